"""The app's tabs, one small function each: each builds its components and wires its handlers (`Handlers`).

Images show no label badge (`show_label=False`): their titles are Markdown above them or inside the figure, so
nothing is covered. Tables are Markdown (built by `mae_hf.report.tables`, the report's own, headers included), so
they scroll sideways on a narrow screen and never break a word or a number.
"""

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ..labels import COMPARE_MODES, FEATURE_LABELS, MEASURE_HELP
from .handlers import Handlers
from .inputs import CheckedDropdown, CheckedNumber, CheckedRadio, CheckedSlider, DigitImage, DigitSketchpad

__all__ = [
    "DigitControls",
    "example_files",
    "reconstruct_tab",
    "metrics_tab",
    "latent_tab",
    "attention_tab",
    "weights_tab",
    "about_tab",
    "MASK_RATIO_RANGE",
]

# The mask ratios the slider offers: where the shipped MAE beats predicting the mean image by 3 dB (docs/RESULTS.md).
MASK_RATIO_RANGE = (0.1, 0.8)


@dataclass
class DigitControls:
    """The Reconstruct tab's current digit and settings, for the tabs that work on them."""

    digit: gr.Image
    mask_ratio: CheckedSlider
    noise_factor: CheckedSlider
    seed: CheckedNumber
    corruption: CheckedRadio

    @property
    def inputs(self) -> list:
        return [self.digit, self.mask_ratio, self.noise_factor, self.seed, self.corruption]


def _image(elem_id: str | None = None, height: int | None = None, pixelated: bool = False) -> gr.Image:
    return gr.Image(
        show_label=False,
        format="png",
        interactive=False,
        buttons=["download"],
        elem_id=elem_id,
        height=height,
        elem_classes="pixelated" if pixelated else None,
    )


def _titled_image(title: str, elem_id: str, **kwargs) -> gr.Image:
    gr.Markdown(f"**{title}**", elem_classes="caption")
    return _image(elem_id, **kwargs)


def _table(title: str, elem_id: str) -> gr.Markdown:
    """A titled table, filled with Markdown by a handler."""
    gr.Markdown(f"**{title}**", elem_classes="caption")
    return gr.Markdown(elem_id=elem_id, elem_classes="table")


def example_files(folder: Path) -> list[Path]:
    """The example digits (PNG files from the MNIST test split), sorted by digit."""
    return sorted(folder.glob("*.png"), key=lambda p: p.stem.rsplit("-", 1)[-1])


def reconstruct_tab(lab: Handlers, examples: list[Path]) -> DigitControls:
    """
    One current digit, shown once, that a drawing, an upload or an example replaces; both models' reconstructions
    follow it (and every setting) by themselves.
    """
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=300):
            gr.Markdown("**1. Draw, upload or pick a digit**", elem_classes="caption")
            with gr.Tabs(overflow_behavior="wrap"):
                with gr.Tab("Draw", id="draw"):
                    sketch = DigitSketchpad(
                        show_label=False,
                        canvas_size=(280, 280),
                        type="filepath",
                        image_mode="RGBA",
                        format="png",
                        layers=False,
                        transforms=(),
                        height=360,
                        elem_id="sketchpad",
                        brush=gr.Brush(default_size=10, colors=["#000000"], color_mode="fixed"),
                    )
                with gr.Tab("Upload", id="upload"):
                    upload = DigitImage(
                        show_label=False,
                        type="filepath",
                        image_mode=None,
                        format="png",
                        sources=["upload", "clipboard"],
                        height=360,
                        elem_id="upload",
                    )
            gr.Markdown(
                "Drawings and photos are made MNIST-like: grayscale, white ink on black, cropped to the digit, "
                "scaled to fit 20×20 and centred by centre of mass in 28×28.",
                elem_classes="explain",
            )
        with gr.Column(scale=4, min_width=280):
            gr.Markdown("**2. The current digit** (28×28, what both models are given)", elem_classes="caption")
            digit = DigitImage(
                show_label=False,
                type="filepath",
                image_mode=None,
                format="png",
                interactive=False,
                height=200,
                elem_classes="pixelated",
                elem_id="model-input",
            )
            picked = None
            if examples:
                picked = gr.Examples(
                    [[str(p)] for p in examples],
                    inputs=[digit],
                    label="Or pick a test digit",
                    examples_per_page=10,
                    elem_id="examples",
                )
            low, high = MASK_RATIO_RANGE
            mask_ratio = CheckedSlider(
                low,
                high,
                value=0.75,
                step=0.05,
                label="MAE mask ratio",
                info=f"Share of the 4×4 patches hidden from the MAE ({low:g} to {high:g}: where it fills the "
                "holes clearly better than guessing the average digit; it was trained at 0.75).",
            )
            noise_factor = CheckedSlider(
                0.0,
                1.5,
                value=0.5,
                step=0.05,
                label="DAE noise",
                info="Strength (std) of the Gaussian noise added to the DAE's input; trained at 0.5.",
            )
            with gr.Row():
                seed = CheckedNumber(
                    value=0, precision=0, minimum=0, label="Seed", info="Same seed, same mask and noise.", min_width=100
                )
                corruption = CheckedRadio(COMPARE_MODES, value="own", label="What each model is given", scale=2)

    gr.Markdown("### Masked autoencoder (ViT)")
    with gr.Row():
        with gr.Column(min_width=150):
            mae_input = _titled_image("Its input (hidden patches in blue)", "mae-input", height=220, pixelated=True)
        with gr.Column(min_width=150):
            mae_recon = _titled_image("Its reconstruction (every patch)", "mae-recon", height=220, pixelated=True)
        with gr.Column(min_width=150):
            mae_pasted = _titled_image("Visible patches pasted back", "mae-pasted", height=220, pixelated=True)
    gr.Markdown("### Denoising autoencoder (CNN)")
    with gr.Row():
        with gr.Column(min_width=150):
            dae_input = _titled_image("Its input", "dae-input", height=220, pixelated=True)
        with gr.Column(min_width=150):
            dae_recon = _titled_image("Its reconstruction", "dae-recon", height=220, pixelated=True)
        with gr.Column(min_width=150):
            gr.Markdown(
                " ".join(MEASURE_HELP[k] for k in ("psnr", "ssim", "psnr_input", "psnr_masked")), elem_classes="explain"
            )
    table = _table("How close each output is to the current digit", "metrics")

    controls = DigitControls(digit, mask_ratio, noise_factor, seed, corruption)
    outputs = [mae_input, mae_recon, mae_pasted, dae_input, dae_recon, table]
    # The digit: every source replaces it and clears the other sources, so one digit is current.
    sketch.change(
        lab.digit_from_sketch,
        sketch,
        digit,
        api_name="digit_from_sketch",
        trigger_mode="always_last",
        show_progress="hidden",
    ).success(lambda: None, None, upload, api_visibility="private")
    # A refused upload: its one toast, the current digit kept as it was (no error badge over it), the upload box
    # emptied (not a broken image).
    uploaded = upload.upload(lab.digit_from_upload, upload, digit, api_name="digit_from_upload", show_progress="hidden")
    uploaded.success(lambda: None, None, sketch, api_visibility="private")
    uploaded.failure(lambda: None, None, upload, api_visibility="private")
    if picked is not None:
        picked.load_input_event.then(
            lambda: (None, None),
            None,
            [sketch, upload],
            api_visibility="private",
        )
    # The reconstruction follows the digit and every setting.
    digit.change(lab.reconstruct, controls.inputs, outputs, api_name="reconstruct", trigger_mode="always_last")
    for control in (mask_ratio, noise_factor):
        control.release(
            lab.reconstruct_if_digit, controls.inputs, outputs, api_visibility="private", trigger_mode="always_last"
        )
    for event in (seed.submit, corruption.change):
        event(lab.reconstruct_if_digit, controls.inputs, outputs, api_visibility="private", trigger_mode="always_last")
    return controls


def metrics_tab() -> list:
    """Test-set PSNR / SSIM distributions and their summary. Returns its outputs (filled by the timer)."""
    status = gr.Markdown(elem_classes="explain", elem_id="metrics-status")
    gr.Markdown(
        "Both models on the same test digits, each on its own task and on the other's, at the mask ratio and "
        "noise they were trained with (one mask and one noise draw per digit, shared by both models). "
        + " ".join(MEASURE_HELP[k] for k in ("psnr", "ssim", "psnr_masked")),
        elem_classes="explain",
    )
    with gr.Row():
        with gr.Column(min_width=300):
            psnr = _titled_image("PSNR of every test digit", "psnr-hist")
        with gr.Column(min_width=300):
            ssim = _titled_image("SSIM of every test digit", "ssim-hist")
    table = _table("Mean ± std over the test digits", "metrics-table")
    return [status, psnr, ssim, table]


MAE_FEATURE_CHOICES = [(FEATURE_LABELS[k], k) for k in ("mae_cls", "mae_mean", "raw_pixels")]


def latent_tab(lab: Handlers, controls: DigitControls) -> tuple[list, gr.Dropdown]:
    """t-SNE maps with the current digit placed, its nearest training digits, and the clustering measures; they
    follow the current digit and the second map's choice by themselves."""
    status = gr.Markdown(elem_classes="explain", elem_id="latent-status")
    mae_features = CheckedDropdown(
        MAE_FEATURE_CHOICES,
        value="mae_cls",
        label="Second map",
        info="Which features to compare with the DAE's bottleneck.",
        elem_id="second-map",
    )
    gr.Markdown(
        "**t-SNE maps of the test digits, coloured by class; the star is the current digit**", elem_classes="caption"
    )
    with gr.Row():
        with gr.Column(min_width=320):
            dae_map = _image("tsne-dae")
        with gr.Column(min_width=320):
            second_map = _image("tsne-second")
    gr.Markdown(
        "**The current digit's nearest training digits**: the first eight in the DAE's bottleneck, the next eight "
        "in the second map's features (on each: its label, its distance)",
        elem_classes="caption",
    )
    neighbours = gr.Gallery(
        show_label=False,
        columns=8,
        format="png",
        object_fit="contain",
        elem_classes="pixelated",
        elem_id="neighbours",
    )
    placement = _table("Where the current digit lands", "placement-table")
    gr.Markdown(
        "The study measured how tight each class is by its radius in the t-SNE map. "
        + " ".join(
            MEASURE_HELP[k]
            for k in (
                "tsne_radius",
                "original_radius",
                "scale_free_radius",
                "silhouette",
                "trustworthiness",
                "knn_accuracy",
                "linear_probe_accuracy",
            )
        ),
        elem_classes="explain",
    )
    radii = _table("Mean radius of a class", "radius-table")
    measures = _table("Is the class in the features? (raw pixels: the baseline to beat)", "measures-table")
    outputs = [status, dae_map, second_map, neighbours, placement, radii, measures]
    mae_features.change(
        lab.latent_space, [controls.digit, mae_features], outputs, api_name="latent_space", trigger_mode="always_last"
    )
    controls.digit.change(
        lab.latent_space_if_ready,
        [controls.digit, mae_features],
        outputs,
        api_visibility="private",
        trigger_mode="always_last",
    )
    return outputs, mae_features


def attention_tab(lab: Handlers, controls: DigitControls, tab: gr.Tab) -> None:
    """The current digit's MAE attention and rollout, and both models' saliency, under the current mask; computed
    when the tab is opened with a digit in place."""
    gr.Markdown(
        "MAE: attention from the CLS token to every patch, per layer (rows) and head (columns), and attention "
        "rollout (Abnar & Zuidema 2020) over the layers; masking off, and under the Reconstruct tab's mask for "
        "this seed and mask ratio (hidden patches grey). Saliency = |∂‖latent‖/∂pixel|, the same definition "
        "for both models.",
        elem_classes="explain",
    )
    with gr.Row():
        with gr.Column(min_width=300):
            plain = _titled_image("CLS attention, masking off", "attention-plain")
        with gr.Column(min_width=300):
            masked = _titled_image("CLS attention under the current mask", "attention-masked")
    overlays = _titled_image("Rollout and saliency over the digit", "saliency")
    summary = gr.Markdown(
        "*Draw, upload or pick a digit on the Reconstruct tab: its attention and saliency show here.*",
        elem_id="attention-summary",
    )
    outputs = [plain, masked, overlays, summary]
    tab.select(lab.attention_if_digit, controls.inputs, outputs, api_visibility="private", show_progress="minimal")
    # The API endpoint (the page computes on opening the tab): an event of a button that is never shown.
    gr.Button(visible=False).click(lab.attention, controls.inputs, outputs, api_name="attention")


def weights_tab() -> list:
    """Per-layer weight histograms and the near-zero table, trained vs init. Returns its outputs."""
    status = gr.Markdown(elem_classes="explain", elem_id="weights-status")
    gr.Markdown(
        MEASURE_HELP["near_zero"] + " Conv and linear weights only (biases, norms, tokens and fixed position "
        "tables excluded).",
        elem_classes="explain",
    )
    table = _table("Share of weights near zero", "weights-table")
    dae = _titled_image("DAE", "weights-dae")
    mae = _titled_image("MAE", "weights-mae")
    return [status, dae, mae, table]


def about_tab(models_status: dict, answer_markdown: str, study_markdown: str) -> tuple[gr.Markdown, gr.Markdown]:
    """The answer to each of the study's claims in words first; then what the two models are, where they come from,
    their cards, and our verdicts in detail. Returns the model summary and the verdicts (both filled in later)."""
    gr.Markdown("### The short answer\n\n" + answer_markdown, elem_id="answer")
    gr.Markdown(
        "**mae_hf** compares a *masked autoencoder* (transformers' `ViTMAEForPreTraining`: hides most 4×4 patches and "
        "predicts them from the rest) with a *convolutional denoising autoencoder* (adds Gaussian noise and learns to "
        "remove it) on MNIST digits. Both are ordinary Hugging Face models: `ViTMAEForPreTraining.from_pretrained(...)`"
        " and `AutoModel.from_pretrained(..., trust_remote_code=True)`."
    )
    summary = gr.Markdown(models_status["message"], elem_id="model-summary")
    gr.Markdown(
        "### The study's claims, and our verdicts in detail\n\nThe study behind this project claimed (H1) MAE "
        'latents cluster by class more tightly, (H2) the DAE has more near-zero weights so it "learns less", and (H3) '
        "the MAE reconstructs better. Each is checked under every measure that bears on it, on the test digits this "
        "app analyses."
    )
    verdicts = gr.Markdown(elem_id="verdicts")
    gr.Markdown(study_markdown, elem_id="study-grid")
    return summary, verdicts
