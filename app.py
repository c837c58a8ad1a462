"""mae_hf's Gradio app: draw a digit and watch a masked and a denoising autoencoder rebuild it.

    python app.py [--dae DIR_OR_HUB_ID] [--mae DIR_OR_HUB_ID] [--port N] [--share]

The same through environment variables on a Space: MAE_HF_DAE, MAE_HF_MAE, PORT / GRADIO_SERVER_PORT,
GRADIO_SHARE. Defaults: the bundled models in `pretrained/` (see `mae_hf.cli.pretrained_dir`).

This file only assembles tabs; each tab is a small function, each handler a plain function with an `api_name`
that calls `mae_hf` (so `gradio_client` can call it too).
"""

import argparse
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# Nothing here needs the network with the bundled models: keep gradio from phoning home.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from mae_hf.cli import pretrained_dir  # noqa: E402
from mae_hf.comparison import CORRUPTIONS, compare_reconstructions, metrics_table, to_display  # noqa: E402
from mae_hf.digits import DigitImageError, preprocess_digit  # noqa: E402
from mae_hf.loading import LoadedModels, ModelLoadError, count_parameters, load_models  # noqa: E402

logger = logging.getLogger("mae_hf.app")

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
# 28×28 → 112×112 by nearest neighbour; the browser enlarges further with crisp pixels (CSS `pixelated`). Larger
# PNGs cost server time on every request for no visible gain.
DISPLAY_SCALE = 4
METRIC_HEADERS = ["Output", "Corrupted input PSNR (dB)", "Output PSNR (dB)", "Output SSIM", "Masked-region PSNR (dB)"]
CSS = """
.pixelated img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }
#examples img { image-rendering: pixelated; }
#title { margin-bottom: 0; }
.explain { font-size: 0.9em; opacity: 0.85; }
"""


class DigitImage(gr.Image):
    """
    A `gr.Image` whose file reaches the handler as its path, unopened, so that `mae_hf.digits` validates it: an
    image of any size or mode, a non-image or a corrupt file all get a clear message instead of failing inside
    gradio's own decoding.
    """

    is_template = True  # rendered by the frontend's Image component

    def preprocess(self, payload):
        if payload is None or payload.path is None:
            return super().preprocess(payload)
        return str(payload.path)


class DigitSketchpad(gr.Sketchpad):
    """`gr.Sketchpad` whose unreadable payloads (possible through the API) become a clear `gr.Error`."""

    is_template = True

    def get_block_name(self) -> str:
        return "imageeditor"

    def get_block_class(self) -> str:
        return "imageeditor"

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except Exception as err:  # noqa: BLE001 - anything gradio's decoding raises
            raise gr.Error(f"The drawing could not be read ({type(err).__name__}: {err}). Draw again.") from err


def to_uint8(digit: np.ndarray) -> np.ndarray:
    """[0, 1] floats → uint8, the form the model-input image is stored in (a lossless PNG)."""
    return np.round(np.clip(digit, 0.0, 1.0) * 255).astype(np.uint8)


def quantize(digit: np.ndarray) -> np.ndarray:
    """Round to 8 bits, so a digit gives the same result whether it comes as floats or as the stored PNG."""
    return to_uint8(digit).astype(np.float32) / 255.0


# Select the Sketchpad's brush once the page is ready, so a visitor can draw at once (gradio starts without a tool).
SELECT_BRUSH_JS = """
() => {
  let tries = 0;
  const pick = () => {
    const brush = document.querySelector('#sketchpad button[aria-label="Brush"]');
    if (brush) { brush.click(); } else if (tries++ < 50) { setTimeout(pick, 100); }
  };
  pick();
}
"""


def _user_error(err: Exception) -> gr.Error:
    return gr.Error(str(err), title="Cannot use this image")


class DigitLab:
    """The handlers, bound to the loaded models. One lock serialises model calls: ViTMAE reads its mask ratio
    from its (shared) config at forward time, and the models are tiny, so serial forwards are fast."""

    def __init__(self, models: LoadedModels):
        self.models = models
        self.lock = threading.Lock()

    def digit_from_sketch(self, sketch):
        """The drawing on the canvas → the 28×28 MNIST-style model input."""
        try:
            return to_uint8(preprocess_digit(sketch if sketch is not None else {}))
        except DigitImageError as err:
            raise _user_error(err) from err

    def digit_from_upload(self, image):
        """An uploaded picture (any size or mode) → the 28×28 MNIST-style model input."""
        try:
            return to_uint8(preprocess_digit(image))
        except DigitImageError as err:
            raise _user_error(err) from err

    def reconstruct(self, image, mask_ratio: float = 0.75, noise_factor: float = 0.5, seed: int = 0,
                    corruption: str = "own"):
        """
        Corrupt the digit and reconstruct it with both models.

        `image`: any picture of a digit (a 28×28 one is taken as MNIST-formatted); `corruption`: "own", "mask"
        or "noise". Returns the model input, the MAE's input, reconstruction and pasted image, the DAE's input and
        reconstruction (each enlarged 4×) and the PSNR/SSIM table.
        """
        try:
            digit = quantize(preprocess_digit(image))
        except DigitImageError as err:
            raise _user_error(err) from err
        try:
            seed = int(seed if seed is not None else 0)
            pixel_values = torch.from_numpy(digit)[None, None]  # (1, 1, 28, 28)
            with self.lock:
                result = compare_reconstructions(
                    self.models.dae, self.models.mae, pixel_values,
                    mask_ratio=float(mask_ratio), noise_factor=float(noise_factor), seed=seed, corruption=corruption,
                )
        except (ValueError, TypeError) as err:
            raise gr.Error(str(err), title="Invalid setting") from err
        show = lambda img, mask=None: to_display(img, DISPLAY_SCALE, mask)  # noqa: E731
        return (
            to_uint8(digit),
            show(result.mae_input, result.mae_pixel_mask),
            show(result.mae_reconstruction),
            show(result.mae_pasted),
            show(result.dae_input, result.dae_pixel_mask),
            show(result.dae_reconstruction),
            metrics_table(result.metrics),
        )

    def reconstruct_if_ready(self, image, mask_ratio, noise_factor, seed, corruption):
        """Re-run after a control changed; quietly does nothing while there is no digit yet."""
        if image is None:
            return [gr.skip()] * 7
        return self.reconstruct(image, mask_ratio, noise_factor, seed, corruption)


@dataclass
class DigitControls:
    """The Reconstruct tab's shared components, for tabs that work on the current digit and corruption."""

    digit: gr.Image
    mask_ratio: gr.Slider
    noise_factor: gr.Slider
    seed: gr.Number
    corruption: gr.Radio


def _result_image(label: str) -> gr.Image:
    return gr.Image(label=label, format="png", interactive=False, height=210, buttons=["download"],
                    elem_classes="pixelated")


def example_files(folder: Path = EXAMPLES_DIR) -> list[Path]:
    """The example digits (PNG files from the embedded MNIST test split), sorted by digit."""
    return sorted(folder.glob("*.png"), key=lambda p: p.stem.rsplit("-", 1)[-1])


def reconstruct_tab(lab: DigitLab, examples: list[Path]) -> DigitControls:
    """Draw / upload / pick a digit, set the corruption, and compare both reconstructions."""
    digit = DigitImage(
        label="Model input (28×28, what both models see)", type="filepath", image_mode=None, format="png",
        interactive=False, height=230, elem_classes="pixelated", elem_id="model-input", render=False,
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            with gr.Tabs():
                with gr.Tab("Draw", id="draw"):
                    sketch = DigitSketchpad(
                        label="Draw one digit (0–9), large, with the mouse or a finger",
                        canvas_size=(280, 280), type="numpy", image_mode="RGBA", format="png", layers=False,
                        transforms=(), brush=gr.Brush(default_size=10, colors=["#000000"], color_mode="fixed"),
                        height=380, elem_id="sketchpad",
                    )
                    draw_button = gr.Button("Reconstruct drawing", variant="primary", elem_id="reconstruct-drawing")
                with gr.Tab("Upload", id="upload"):
                    upload = DigitImage(
                        label="Upload a picture of a digit (any size; dark on light or light on dark)",
                        type="filepath", image_mode=None, format="png", sources=["upload", "clipboard"],
                        height=380, elem_id="upload",
                    )
            gr.Markdown(
                "Drawings and uploads are converted the way MNIST was made: grayscale, inverted to white on black, "
                "cropped to the digit, scaled to fit 20×20 and centred by centre of mass in 28×28.",
                elem_classes="explain",
            )
            picked = None
            if examples:
                picked = gr.Examples(
                    [[str(p)] for p in examples], inputs=[digit], label="Or pick a digit from the MNIST test split",
                    examples_per_page=10, elem_id="examples",
                )
        with gr.Column(scale=4):
            digit.render()
            mask_ratio = gr.Slider(0.0, 0.95, value=0.75, step=0.05, label="MAE mask ratio",
                                   info="Fraction of the 4×4 patches hidden from the MAE (it was trained at 0.75).")
            noise_factor = gr.Slider(0.0, 1.5, value=0.5, step=0.05, label="DAE noise factor",
                                     info="Std of the Gaussian noise added to the DAE's input (trained at 0.5).")
            with gr.Row():
                seed = gr.Number(value=0, precision=0, minimum=0, label="Seed", info="Same seed → same corruption.")
                corruption = gr.Radio([(label, value) for value, label in CORRUPTIONS.items()], value="own",
                                      label="Corruption", scale=2)
            run_button = gr.Button("Reconstruct", variant="primary", elem_id="reconstruct")

    gr.Markdown("### Masked autoencoder (ViTMAE)")
    with gr.Row():
        mae_input = _result_image("MAE input (hidden patches in blue)")
        mae_recon = _result_image("MAE reconstruction (every patch predicted)")
        mae_pasted = _result_image("MAE output with the visible patches pasted back")
    gr.Markdown("### Denoising autoencoder (CNN)")
    with gr.Row():
        dae_input = _result_image("DAE input (corrupted)")
        dae_recon = _result_image("DAE reconstruction")
        gr.Markdown(
            "**How to read this.** PSNR (peak signal-to-noise ratio, in dB, higher is better) and SSIM (structural "
            "similarity, 1 = identical) compare each output with the clean model input on [0, 1]. *Corrupted "
            "input PSNR* is the corrupted image's own score, so the gain is visible; *masked-region PSNR* counts "
            "only the hidden patches, where the model had to invent the content.",
            elem_classes="explain",
        )
    table = gr.Dataframe(headers=METRIC_HEADERS, label="Reconstruction quality against the model input",
                         interactive=False, elem_id="metrics")

    settings = [mask_ratio, noise_factor, seed, corruption]
    outputs = [digit, mae_input, mae_recon, mae_pasted, dae_input, dae_recon, table]
    run_button.click(lab.reconstruct, [digit, *settings], outputs, api_name="reconstruct")
    draw_button.click(lab.digit_from_sketch, sketch, digit, api_name="digit_from_sketch").success(
        lab.reconstruct, [digit, *settings], outputs, api_visibility="private"
    )
    upload.upload(lab.digit_from_upload, upload, digit, api_name="digit_from_upload").success(
        lab.reconstruct, [digit, *settings], outputs, api_visibility="private"
    )
    if picked is not None:
        picked.load_input_event.then(lab.reconstruct, [digit, *settings], outputs, api_visibility="private")
    for control in (mask_ratio, noise_factor):
        control.release(lab.reconstruct_if_ready, [digit, *settings], outputs, api_visibility="private")
    seed.submit(lab.reconstruct_if_ready, [digit, *settings], outputs, api_visibility="private")
    corruption.change(lab.reconstruct_if_ready, [digit, *settings], outputs, api_visibility="private")
    return DigitControls(digit=digit, mask_ratio=mask_ratio, noise_factor=noise_factor, seed=seed,
                         corruption=corruption)


def model_summary(models: LoadedModels) -> str:
    """Markdown: where each model came from, its size and shape, and its card when the folder has one."""
    dae, mae = models.dae.config, models.mae.config
    lines = [
        "| | loaded from | parameters | architecture |",
        "| --- | --- | --- | --- |",
        f"| DAE | `{models.dae_source}` | {count_parameters(models.dae):,} | conv "
        f"{' → '.join(map(str, [dae.num_channels, *dae.hidden_channels]))}, {dae.kernel_size}×{dae.kernel_size} kernels, "
        f"2×2 max-pool; trained with noise factor {dae.noise_factor} |",
        f"| MAE | `{models.mae_source}` | {count_parameters(models.mae):,} | ViT, {mae.patch_size}×{mae.patch_size} "
        f"patches, width {mae.hidden_size}, {mae.num_hidden_layers} encoder / {mae.decoder_num_hidden_layers} decoder "
        f"layers; trained at mask ratio {mae.mask_ratio} |",
    ]
    for name, source in (("DAE", models.dae_source), ("MAE", models.mae_source)):
        card = Path(source) / "README.md"
        if card.is_file():
            lines += ["", f"<details><summary>{name} model card</summary>\n\n{card.read_text()}\n\n</details>"]
    return "\n".join(lines)


def about_tab(models: LoadedModels) -> None:
    """What the two models are and where they were loaded from."""
    gr.Markdown(
        "**mae_hf** compares a *masked autoencoder* (transformers' `ViTMAEForPreTraining`: hides most 4×4 "
        "patches and predicts them from the rest) with a *convolutional denoising autoencoder* (adds Gaussian "
        "noise and learns to remove it) on MNIST digits. Both are ordinary Hugging Face models: "
        "`ViTMAEForPreTraining.from_pretrained(...)` and `AutoModel.from_pretrained(..., trust_remote_code=True)`."
    )
    gr.Markdown(model_summary(models))


def build_demo(models: LoadedModels, examples_dir: Path = EXAMPLES_DIR) -> gr.Blocks:
    """
    The whole app as `gr.Blocks` (not launched): one small function per tab.

    A tab that works on the current digit (attention, saliency, latent placement) is a function
    `(lab, controls) -> None` placed after the Reconstruct tab; it wires its own handlers with `controls.digit`,
    `controls.mask_ratio`, `controls.seed` ... as inputs. Tabs on the models alone take `models`.
    """
    lab = DigitLab(models)
    with gr.Blocks(title="mae_hf: masked vs denoising autoencoders") as demo:
        gr.Markdown("# Masked vs denoising autoencoder on MNIST", elem_id="title")
        gr.Markdown(
            "Draw a digit, upload one or pick one below. The **MAE** sees only some patches and fills in the rest; "
            "the **DAE** sees the whole digit under noise and cleans it up. Same digit, same seed, side by side."
        )
        with gr.Tabs():
            with gr.Tab("Reconstruct", id="reconstruct"):
                reconstruct_tab(lab, example_files(examples_dir))  # returns DigitControls for later tabs
            with gr.Tab("About", id="about"):
                about_tab(models)
        demo.load(None, js=SELECT_BRUSH_JS)
    return demo


def serve(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, share: bool = False, concurrency: int = 4,
          block: bool = True):
    """Queue on (at most `concurrency` requests at once, 64 waiting), then launch; `block=False` returns at once."""
    demo.queue(default_concurrency_limit=concurrency, max_size=64)
    return demo.launch(server_name=host, server_port=port, share=share, theme=gr.themes.Soft(), css=CSS,
                       show_error=True, prevent_thread_lock=not block)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dae", default=env.get("MAE_HF_DAE", str(pretrained_dir() / "dae-mnist")),
                        help="DAE folder or Hub id (env MAE_HF_DAE)")
    parser.add_argument("--mae", default=env.get("MAE_HF_MAE", str(pretrained_dir() / "mae-mnist")),
                        help="MAE folder or Hub id (env MAE_HF_MAE)")
    parser.add_argument("--host", default=env.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="interface to listen on; 0.0.0.0 on a Space (env GRADIO_SERVER_NAME)")
    parser.add_argument("--port", type=int, default=int(env.get("PORT", env.get("GRADIO_SERVER_PORT", 7860))),
                        help="port (env PORT or GRADIO_SERVER_PORT)")
    parser.add_argument("--share", action="store_true", default=env.get("GRADIO_SHARE", "") in ("1", "true", "True"),
                        help="also serve through a public gradio.live link (env GRADIO_SHARE=1)")
    parser.add_argument("--concurrency", type=int, default=int(env.get("MAE_HF_CONCURRENCY", 4)),
                        help="requests processed at once (env MAE_HF_CONCURRENCY)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        models = load_models(args.dae, args.mae)
        models.check_compatible()
    except ModelLoadError as err:
        logger.error("%s", err)
        return 2
    demo = build_demo(models)
    logger.info("Models loaded and app built in %.1f s; starting the server", time.perf_counter() - start)
    # One thread per request: the models are tiny, and intra-op threads would fight over the cores.
    torch.set_num_threads(1)
    serve(demo, host=args.host, port=args.port, share=args.share, concurrency=args.concurrency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
