"""The app's tabs, one small function each: each builds its components, puts its outputs in `Handlers.outputs` and
wires its handlers (`Handlers`), its API endpoint included.

Images show no label badge (`show_label=False`): their titles are Markdown above them or inside the figure, so
nothing is covered. Tables are Markdown (built by `mae_hf.tables`, the report's own, headers included), so
they scroll sideways on a narrow screen and never break a word or a number.
"""

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ..labels import MEASURE_HELP, compare_modes
from ..registry import MODEL_KINDS, feature_label, model_label
from .handlers import Handlers
from .inputs import CheckedDropdown, CheckedNumber, CheckedRadio, CheckedSlider, DigitImage, DigitSketchpad
from .outputs import AttentionOutputs, LatentOutputs, MetricsOutputs, ReconstructOutputs, WeightsOutputs

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


def _api_only(fn, inputs, outputs: list, name: str, suffix: str) -> None:
    """
    An API endpoint no page event triggers, whose values pass through its components' own processing: `inputs` are
    checked by their `preprocess` (`mae_hf.app.inputs`), and the images returned become PNG files.

    `gr.api` cannot make these: it declares its inputs and outputs as `gr.Api` values with gradio's preprocessing and
    postprocessing off, so a picture sent would reach the handler unchecked and an image returned (an array) would
    not become a file (the answer would not serialise). `gr.on` with no triggers makes the same trigger-less event
    that `gr.api` makes, over the tab's own components, and no hidden button.
    """
    gr.on([], fn, inputs, outputs, api_name=_api(name, suffix))


def reconstruct_tab(lab: Handlers, examples: list[Path], suffix: str = "") -> DigitControls:
    """
    One current picture, shown once, that a drawing, an upload or an example replaces; every model's reconstruction
    follows it (and every setting) by themselves.
    """
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=300):
            sketch, upload = _picture_sources(lab.service.profile, suffix)
        with gr.Column(scale=4, min_width=280):
            digit, picked = _current_picture(lab.service.profile, examples, suffix)
            controls = DigitControls(digit, *_settings(lab.service))
    lab.outputs.reconstruct = _reconstructions(lab.service, suffix)
    _follow_the_sources(lab, sketch, upload, picked, digit, suffix)
    _follow_the_picture(lab, controls, suffix)
    return controls


def _picture_sources(profile, suffix: str) -> tuple[DigitSketchpad, DigitImage]:
    """Step 1: the canvas and the upload box, each on its own tab, and the profile's hint."""
    gr.Markdown(f"**1. Draw, upload or pick a {profile.noun}**", elem_classes="caption")
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
    return sketch, upload


def _current_picture(profile, examples: list[Path], suffix: str) -> tuple[DigitImage, gr.helpers.Examples | None]:
    """Step 2: the current picture, as every model is given it, and the examples that replace it."""
    size = f"{profile.image_size}×{profile.image_size}" if profile.image_size else "at the models' size"
    gr.Markdown(f"**2. The current {profile.noun}** ({size}, what every model is given)", elem_classes="caption")
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
    if not examples:
        return digit, None
    picked = gr.Examples(
        [[str(p)] for p in examples],
        inputs=[digit],
        label=f"Or pick a test {profile.noun}",
        examples_per_page=10,
        elem_id=_id("examples", suffix),
    )
    return digit, picked


def _settings(service) -> tuple[CheckedSlider, CheckedSlider, CheckedNumber, CheckedRadio]:
    """The mask ratio, the noise, the seed and what each model is given."""
    low, high = MASK_RATIO_RANGE
    mask_ratio = CheckedSlider(
        low,
        high,
        value=0.75,
        step=0.05,
        label="MAE mask ratio",
        info=f"Share of the patches hidden from the MAE ({low:g} to {high:g}: where it fills the holes clearly "
        f"better than guessing the average {service.profile.noun}; it was trained at 0.75).",
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
        own = {n: MODEL_KINDS[n].default_corruption for n in service.names if n in MODEL_KINDS}
        corruption = CheckedRadio(compare_modes(own), value="own", label="What each model is given", scale=2)
    return mask_ratio, noise_factor, seed, corruption


def _reconstructions(service, suffix: str) -> ReconstructOutputs:
    """Every model's row of images, then the table of how close each output is."""
    names = service.names
    images = {name: _model_section(name, suffix, help_column=i == len(names) - 1) for i, name in enumerate(names)}
    table = _table(f"How close each output is to the current {service.profile.noun}", _id("metrics", suffix))
    return ReconstructOutputs(images, table)


def _follow_the_sources(lab: Handlers, sketch, upload, picked, digit, suffix: str) -> None:
    """Every source replaces the current picture and clears the other sources, so one picture is current."""
    sketch.change(
        lab.digit_from_sketch,
        sketch,
        digit,
        api_name=_api("digit_from_sketch", suffix),
        trigger_mode="always_last",
        show_progress="hidden",
    ).success(lambda: None, None, upload, api_visibility="private")
    # A refused upload: its one toast, the current digit kept as it was, the upload box emptied (not a broken image).
    # The refusal marks the digit (its output) as failed; on a loaded machine gradio's page sometimes showed that as
    # an "Error" badge over the digit despite show_progress="hidden", so the follow-up also answers for the digit
    # (unchanged), which marks it done again.
    uploaded = upload.upload(
        lab.digit_from_upload, upload, digit, api_name=_api("digit_from_upload", suffix), show_progress="hidden"
    )
    uploaded.success(lambda: None, None, sketch, api_visibility="private")
    uploaded.failure(lambda: (None, gr.skip()), None, [upload, digit], api_visibility="private", show_progress="hidden")
    if picked is not None:
        picked.load_input_event.then(lambda: (None, None), None, [sketch, upload], api_visibility="private")


def _follow_the_picture(lab: Handlers, controls: DigitControls, suffix: str) -> None:
    """The reconstruction follows the picture and every setting."""
    outputs = lab.outputs.reconstruct.components
    controls.digit.change(
        lab.reconstruct, controls.inputs, outputs, api_name=_api("reconstruct", suffix), trigger_mode="always_last"
    )
    for control in (controls.mask_ratio, controls.noise_factor):
        control.release(
            lab.reconstruct_if_digit, controls.inputs, outputs, api_visibility="private", trigger_mode="always_last"
        )
    for event in (controls.seed.submit, controls.corruption.change):
        event(lab.reconstruct_if_digit, controls.inputs, outputs, api_visibility="private", trigger_mode="always_last")


def _model_section(name: str, suffix: str, help_column: bool) -> dict[str, gr.Image]:
    """One model's row of the Reconstruct tab: its input, its reconstruction, and for a model that masks its own
    input the visible patches pasted back (else, in the last row, what the numbers mean)."""
    from .views import reconstruct_slots

    kind, slots = MODEL_KINDS.get(name), reconstruct_slots(name)
    gr.Markdown(f"### {kind.description[0].upper() + kind.description[1:] if kind else model_label(name)}")
    key, images = name.lower(), {}
    with gr.Row():
        with gr.Column(min_width=150):
            title = "Its input (hidden patches in blue)" if "pasted" in slots else "Its input"
            images["input"] = _titled_image(title, _id(f"{key}-input", suffix), height=220, pixelated=True)
        with gr.Column(min_width=150):
            images["reconstruction"] = _titled_image(
                "Its reconstruction", _id(f"{key}-recon", suffix), height=220, pixelated=True
            )
        with gr.Column(min_width=150):
            if "pasted" in slots:
                images["pasted"] = _titled_image(
                    "Visible patches pasted back", _id(f"{key}-pasted", suffix), height=220, pixelated=True
                )
            elif help_column:
                gr.Markdown(
                    " ".join(MEASURE_HELP[k] for k in ("psnr", "ssim", "psnr_input", "psnr_masked")),
                    elem_classes="explain",
                )
    return images


def metrics_tab(lab: Handlers, suffix: str = "") -> None:
    """Test-set PSNR / SSIM distributions and their summary (filled in by the page's timer), and `/metrics`."""
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
    lab.outputs.metrics = MetricsOutputs(status, psnr, ssim, table)
    _api_only(lab.metrics, None, lab.outputs.metrics.components, "metrics", suffix)


def latent_tab(lab: Handlers, controls: DigitControls, suffix: str = "") -> gr.Dropdown:
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
    lab.outputs.latent = LatentOutputs(status, first_map, second_map, neighbours, placement, radii, measures)
    outputs = lab.outputs.latent.components
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
    return second


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
    lab.outputs.attention = AttentionOutputs(plain, masked, overlays, summary)
    outputs = lab.outputs.attention.components
    tab.select(lab.attention_if_digit, controls.inputs, outputs, api_visibility="private", show_progress="minimal")
    _api_only(lab.attention, controls.inputs, outputs, "attention", suffix)  # the page computes on opening the tab


def weights_tab(lab: Handlers, suffix: str = "") -> None:
    """Per-layer weight histograms of every model and the near-zero table, trained vs init (filled in by the page's
    timer), and `/weights`."""
    status = gr.Markdown(elem_classes="explain", elem_id=_id("weights-status", suffix))
    gr.Markdown(
        MEASURE_HELP["near_zero"] + " Conv and linear weights only (biases, norms, tokens and fixed position "
        "tables excluded).",
        elem_classes="explain",
    )
    table = _table("Share of weights near zero", _id("weights-table", suffix))
    histograms = {n: _titled_image(model_label(n), _id(f"weights-{n.lower()}", suffix)) for n in lab.service.names}
    lab.outputs.weights = WeightsOutputs(status, histograms, table)
    _api_only(lab.weights, None, lab.outputs.weights.components, "weights", suffix)


def about_tab(lab: Handlers, answer_markdown: str, study_markdown: str, suffix: str = "") -> None:
    """The answer to each of the study's claims in words first; then what the models are, where they come from,
    their cards, and our verdicts in detail (the summary and the verdicts filled in later), and `/verdicts`."""
    gr.Markdown("### The short answer\n\n" + answer_markdown, elem_id=_id("answer", suffix))
    gr.Markdown(
        "**mae_hf** compares a *masked autoencoder* (transformers' `ViTMAEForPreTraining`: hides most patches and "
        "predicts them from the rest) with a *convolutional denoising autoencoder* (adds Gaussian noise and learns to "
        "remove it). Both are ordinary Hugging Face models: `ViTMAEForPreTraining.from_pretrained(...)` and "
        "`AutoModel.from_pretrained(..., trust_remote_code=True)`."
    )
    lab.outputs.summary = gr.Markdown(lab.service.status()["message"], elem_id=_id("model-summary", suffix))
    gr.Markdown(
        "### The study's claims, and our verdicts in detail\n\nThe study behind this project claimed (H1) MAE "
        'latents cluster by class more tightly, (H2) the DAE has more near-zero weights so it "learns less", and (H3) '
        "the MAE reconstructs better. Each is checked under every measure that bears on it, on the test images this "
        "app analyses: a comparison of the two loaded models (one trained model of each), not of the methods, which "
        "the study below compares over seeds."
    )
    lab.outputs.verdicts = gr.Markdown(elem_id=_id("verdicts", suffix))
    gr.Markdown(study_markdown, elem_id=_id("study-grid", suffix))
    gr.api(lab.verdicts, api_name=_api("verdicts", suffix))
