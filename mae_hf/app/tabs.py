"""The app's tabs, one small function each: each builds its components and wires its handlers (`Handlers`).

Images show no label badge (`show_label=False`): their titles are Markdown above them or inside the figure, so
nothing is covered. Tables are Markdown (built by `mae_hf.report.tables`, the report's own, headers included), so
they scroll sideways on a narrow screen and never break a word or a number.
"""

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ..labels import MEASURE_HELP, compare_modes
from ..registry import MODEL_KINDS, feature_label, model_label
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


def example_files(folder: Path | str | None) -> list[Path]:
    """The example pictures (PNG files from a test split, named `...-<class>.png`), sorted by class."""
    if folder is None or not Path(folder).is_dir():
        return []
    return sorted(Path(folder).glob("*.png"), key=lambda p: p.stem.rsplit("-", 1)[-1])


def _id(name: str, suffix: str) -> str:
    """An element id, unique per set of models on the page (`suffix` "" for the first)."""
    return name + suffix


def _api(name: str, suffix: str) -> str:
    """An endpoint's name, unique per set of models: `/reconstruct`, `/reconstruct_fashion`, ..."""
    return name + suffix.replace("-", "_")


def reconstruct_tab(lab: Handlers, examples: list[Path], suffix: str = "") -> DigitControls:
    """
    One current picture, shown once, that a drawing, an upload or an example replaces; every model's reconstruction
    follows it (and every setting) by themselves.
    """
    profile, names = lab.service.profile, lab.service.names
    noun = profile.noun
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=300):
            gr.Markdown(f"**1. Draw, upload or pick a {noun}**", elem_classes="caption")
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
                        elem_id=_id("sketchpad", suffix),
                        elem_classes="sketchpad",
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
                        elem_id=_id("upload", suffix),
                    )
            gr.Markdown(profile.hint, elem_classes="explain")
        with gr.Column(scale=4, min_width=280):
            size = f"{profile.image_size}×{profile.image_size}" if profile.image_size else "at the models' size"
            gr.Markdown(f"**2. The current {noun}** ({size}, what every model is given)", elem_classes="caption")
            digit = DigitImage(
                show_label=False,
                type="filepath",
                image_mode=None,
                format="png",
                interactive=False,
                height=200,
                elem_classes="pixelated",
                elem_id=_id("model-input", suffix),
            )
            picked = None
            if examples:
                picked = gr.Examples(
                    [[str(p)] for p in examples],
                    inputs=[digit],
                    label=f"Or pick a test {noun}",
                    examples_per_page=10,
                    elem_id=_id("examples", suffix),
                )
            low, high = MASK_RATIO_RANGE
            mask_ratio = CheckedSlider(
                low,
                high,
                value=0.75,
                step=0.05,
                label="MAE mask ratio",
                info=f"Share of the patches hidden from the MAE ({low:g} to {high:g}: where it fills the holes "
                f"clearly better than guessing the average {noun}; it was trained at 0.75).",
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
                own = {n: MODEL_KINDS[n].default_corruption for n in names if n in MODEL_KINDS}
                corruption = CheckedRadio(compare_modes(own), value="own", label="What each model is given", scale=2)

    outputs = []
    for i, name in enumerate(names):
        outputs += _model_section(name, suffix, help_column=i == len(names) - 1)
    table = _table(f"How close each output is to the current {noun}", _id("metrics", suffix))
    outputs.append(table)

    controls = DigitControls(digit, mask_ratio, noise_factor, seed, corruption)
    # The picture: every source replaces it and clears the other sources, so one picture is current.
    sketch.change(
        lab.digit_from_sketch,
        sketch,
        digit,
        api_name=_api("digit_from_sketch", suffix),
        trigger_mode="always_last",
        show_progress="hidden",
    ).success(lambda: None, None, upload, api_visibility="private")
    # A refused upload: its one toast, the current digit kept as it was (no error badge over it), the upload box
    # emptied (not a broken image).
    uploaded = upload.upload(
        lab.digit_from_upload, upload, digit, api_name=_api("digit_from_upload", suffix), show_progress="hidden"
    )
    uploaded.success(lambda: None, None, sketch, api_visibility="private")
    uploaded.failure(lambda: None, None, upload, api_visibility="private")
    if picked is not None:
        picked.load_input_event.then(
            lambda: (None, None),
            None,
            [sketch, upload],
            api_visibility="private",
        )
    # The reconstruction follows the picture and every setting.
    digit.change(
        lab.reconstruct, controls.inputs, outputs, api_name=_api("reconstruct", suffix), trigger_mode="always_last"
    )
    for control in (mask_ratio, noise_factor):
        control.release(
            lab.reconstruct_if_digit, controls.inputs, outputs, api_visibility="private", trigger_mode="always_last"
        )
    for event in (seed.submit, corruption.change):
        event(lab.reconstruct_if_digit, controls.inputs, outputs, api_visibility="private", trigger_mode="always_last")
    return controls


def _model_section(name: str, suffix: str, help_column: bool) -> list:
    """One model's row of the Reconstruct tab: its input, its reconstruction, and for a model that masks its own
    input the visible patches pasted back (else, in the last row, what the numbers mean)."""
    from .service import reconstruct_slots

    kind = MODEL_KINDS.get(name)
    gr.Markdown(f"### {kind.description[0].upper() + kind.description[1:] if kind else model_label(name)}")
    key, images = name.lower(), []
    with gr.Row():
        with gr.Column(min_width=150):
            title = "Its input (hidden patches in blue)" if reconstruct_slots(name) == 3 else "Its input"
            images.append(_titled_image(title, _id(f"{key}-input", suffix), height=220, pixelated=True))
        with gr.Column(min_width=150):
            images.append(_titled_image("Its reconstruction", _id(f"{key}-recon", suffix), height=220, pixelated=True))
        with gr.Column(min_width=150):
            if reconstruct_slots(name) == 3:
                images.append(
                    _titled_image(
                        "Visible patches pasted back", _id(f"{key}-pasted", suffix), height=220, pixelated=True
                    )
                )
            elif help_column:
                gr.Markdown(
                    " ".join(MEASURE_HELP[k] for k in ("psnr", "ssim", "psnr_input", "psnr_masked")),
                    elem_classes="explain",
                )
    return images


def metrics_tab(lab: Handlers, suffix: str = "") -> list:
    """Test-set PSNR / SSIM distributions and their summary. Returns its outputs (filled by the timer)."""
    nouns = lab.service.profile.nouns
    status = gr.Markdown(elem_classes="explain", elem_id=_id("metrics-status", suffix))
    gr.Markdown(
        f"Every model on the same test {nouns}, each on its own task and on the other, at the mask ratio and noise "
        f"they were trained with (one mask and one noise draw per {lab.service.profile.noun}, shared by all models). "
        + " ".join(MEASURE_HELP[k] for k in ("psnr", "ssim", "psnr_masked")),
        elem_classes="explain",
    )
    with gr.Row():
        with gr.Column(min_width=300):
            psnr = _titled_image(f"PSNR of every test {lab.service.profile.noun}", _id("psnr-hist", suffix))
        with gr.Column(min_width=300):
            ssim = _titled_image(f"SSIM of every test {lab.service.profile.noun}", _id("ssim-hist", suffix))
    table = _table(f"Mean ± std over the test {nouns}", _id("metrics-table", suffix))
    return [status, psnr, ssim, table]


def latent_tab(lab: Handlers, controls: DigitControls, suffix: str = "") -> tuple[list, gr.Dropdown]:
    """t-SNE maps with the current picture placed, its nearest training images, and the clustering measures; they
    follow the current picture and the second map's choice by themselves."""
    from .service import latent_choices

    noun, nouns = lab.service.profile.noun, lab.service.profile.nouns
    first, others = latent_choices(lab.service.names)
    status = gr.Markdown(elem_classes="explain", elem_id=_id("latent-status", suffix))
    second = CheckedDropdown(
        [(feature_label(k), k) for k in others],
        value=others[0],
        label="Second map",
        info=f"Which features to compare with the {feature_label(first)}.",
        elem_id=_id("second-map", suffix),
    )
    gr.Markdown(
        f"**t-SNE maps of the test {nouns}, coloured by class; the star is the current {noun}**",
        elem_classes="caption",
    )
    with gr.Row():
        with gr.Column(min_width=320):
            first_map = _image(_id("tsne-first", suffix))
        with gr.Column(min_width=320):
            second_map = _image(_id("tsne-second", suffix))
    gr.Markdown(
        f"**The current {noun}'s nearest training {nouns}**: the first eight in the {feature_label(first)}, the next "
        "eight in the second map's features (on each: its class, its distance)",
        elem_classes="caption",
    )
    neighbours = gr.Gallery(
        show_label=False,
        columns=8,
        format="png",
        object_fit="contain",
        elem_classes=["pixelated", "neighbours"],
        elem_id=_id("neighbours", suffix),
    )
    placement = _table(f"Where the current {noun} lands", _id("placement-table", suffix))
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
    radii = _table("Mean radius of a class", _id("radius-table", suffix))
    measures = _table("Is the class in the features? (raw pixels: the baseline to beat)", _id("measures-table", suffix))
    outputs = [status, first_map, second_map, neighbours, placement, radii, measures]
    second.change(
        lab.latent_space,
        [controls.digit, second],
        outputs,
        api_name=_api("latent_space", suffix),
        trigger_mode="always_last",
    )
    controls.digit.change(
        lab.latent_space_if_ready,
        [controls.digit, second],
        outputs,
        api_visibility="private",
        trigger_mode="always_last",
    )
    return outputs, second


def attention_tab(lab: Handlers, controls: DigitControls, tab: gr.Tab, suffix: str = "") -> None:
    """The current picture's MAE attention and rollout, and every model's saliency, under the current mask; computed
    when the tab is opened with a picture in place."""
    noun = lab.service.profile.noun
    gr.Markdown(
        "MAE: attention from the CLS token to every patch, per layer (rows) and head (columns), and attention "
        "rollout (Abnar & Zuidema 2020) over the layers; masking off, and under the Reconstruct tab's mask for "
        "this seed and mask ratio (hidden patches grey). Saliency = |∂‖latent‖/∂pixel|, the same definition "
        "for every model.",
        elem_classes="explain",
    )
    with gr.Row():
        with gr.Column(min_width=300):
            plain = _titled_image("CLS attention, masking off", _id("attention-plain", suffix))
        with gr.Column(min_width=300):
            masked = _titled_image("CLS attention under the current mask", _id("attention-masked", suffix))
    overlays = _titled_image(f"Rollout and saliency over the {noun}", _id("saliency", suffix))
    summary = gr.Markdown(
        f"*Draw, upload or pick a {noun} on the Reconstruct tab: its attention and saliency show here.*",
        elem_id=_id("attention-summary", suffix),
    )
    outputs = [plain, masked, overlays, summary]
    tab.select(lab.attention_if_digit, controls.inputs, outputs, api_visibility="private", show_progress="minimal")
    # The API endpoint (the page computes on opening the tab): an event of a button that is never shown.
    gr.Button(visible=False).click(lab.attention, controls.inputs, outputs, api_name=_api("attention", suffix))


def weights_tab(lab: Handlers, suffix: str = "") -> list:
    """Per-layer weight histograms of every model and the near-zero table, trained vs init. Returns its outputs."""
    status = gr.Markdown(elem_classes="explain", elem_id=_id("weights-status", suffix))
    gr.Markdown(
        MEASURE_HELP["near_zero"] + " Conv and linear weights only (biases, norms, tokens and fixed position "
        "tables excluded).",
        elem_classes="explain",
    )
    table = _table("Share of weights near zero", _id("weights-table", suffix))
    images = [_titled_image(model_label(n), _id(f"weights-{n.lower()}", suffix)) for n in lab.service.names]
    return [status, *images, table]


def about_tab(
    models_status: dict, answer_markdown: str, study_markdown: str, suffix: str = ""
) -> tuple[gr.Markdown, gr.Markdown]:
    """The answer to each of the study's claims in words first; then what the models are, where they come from,
    their cards, and our verdicts in detail. Returns the model summary and the verdicts (both filled in later)."""
    gr.Markdown("### The short answer\n\n" + answer_markdown, elem_id=_id("answer", suffix))
    gr.Markdown(
        "**mae_hf** compares a *masked autoencoder* (transformers' `ViTMAEForPreTraining`: hides most patches and "
        "predicts them from the rest) with a *convolutional denoising autoencoder* (adds Gaussian noise and learns to "
        "remove it). Both are ordinary Hugging Face models: `ViTMAEForPreTraining.from_pretrained(...)` and "
        "`AutoModel.from_pretrained(..., trust_remote_code=True)`."
    )
    summary = gr.Markdown(models_status["message"], elem_id=_id("model-summary", suffix))
    gr.Markdown(
        "### The study's claims, and our verdicts in detail\n\nThe study behind this project claimed (H1) MAE "
        'latents cluster by class more tightly, (H2) the DAE has more near-zero weights so it "learns less", and (H3) '
        "the MAE reconstructs better. Each is checked under every measure that bears on it, on the test images this "
        "app analyses."
    )
    verdicts = gr.Markdown(elem_id=_id("verdicts", suffix))
    gr.Markdown(study_markdown, elem_id=_id("study-grid", suffix))
    return summary, verdicts
