"""The page's outputs by name. Each tab keeps its output components in a group here, and a handler fills a group by
name: `fill(status=..., table=...)` gives `{component: value}`, which gradio takes as a handler's return when the
components are the event's outputs (those left out stay as they are). No handler counts positions; a group's
`components` are the event's outputs, in the order its API endpoint returns them."""

from dataclasses import dataclass, fields

import gradio as gr

__all__ = [
    "OutputGroup",
    "ReconstructOutputs",
    "MetricsOutputs",
    "LatentOutputs",
    "AttentionOutputs",
    "WeightsOutputs",
    "PageOutputs",
]


def _pairs(component, value):
    """`(component, value)` for one output, or for each of a `{key: component}` by its key in `value`."""
    if isinstance(component, dict):
        for key, v in value.items():
            yield from _pairs(component[key], v)
    else:
        yield component, value


def _flat(component) -> list:
    return [c for part in component.values() for c in _flat(part)] if isinstance(component, dict) else [component]


class OutputGroup:
    """A dataclass of output components (a field may be `{key: component}`, e.g. one per model)."""

    @property
    def components(self) -> list:
        """The components, in field order (a dict's in its order): the event's outputs and the endpoint's return."""
        return [c for f in fields(self) for c in _flat(getattr(self, f.name))]

    def fill(self, **values) -> dict:
        """`{component: value}` for the outputs named (a dict field takes `{key: value}`); the others are skipped."""
        return {c: v for name, value in values.items() for c, v in _pairs(getattr(self, name), value)}


@dataclass
class ReconstructOutputs(OutputGroup):
    """The Reconstruct tab: `{model: {"input", "reconstruction"[, "pasted"]}}` images, then the PSNR/SSIM table."""

    images: dict[str, dict[str, gr.Image]]
    table: gr.Markdown


@dataclass
class MetricsOutputs(OutputGroup):
    """The Metrics tab: the analysis status, the PSNR and SSIM histograms, the summary table."""

    status: gr.Markdown
    psnr: gr.Image
    ssim: gr.Image
    table: gr.Markdown


@dataclass
class LatentOutputs(OutputGroup):
    """The Latent tab: status, the two t-SNE maps, the nearest training images, the placement, radius and measure
    tables."""

    status: gr.Markdown
    first_map: gr.Image
    second_map: gr.Image
    neighbours: gr.Gallery
    placement: gr.Markdown
    radii: gr.Markdown
    measures: gr.Markdown


@dataclass
class AttentionOutputs(OutputGroup):
    """The Attention tab: CLS attention masking off and under the mask, the overlay row, the summary."""

    plain: gr.Image
    masked: gr.Image
    overlays: gr.Image
    summary: gr.Markdown


@dataclass
class WeightsOutputs(OutputGroup):
    """The Weights tab: status, `{model: its weight histograms}`, the near-zero table."""

    status: gr.Markdown
    histograms: dict[str, gr.Image]
    table: gr.Markdown


@dataclass
class PageOutputs:
    """Every output of one set of models' page, each group put here by the tab that builds it (None until then)."""

    banner: gr.Markdown | None = None  # the models' loading status, above the tabs
    reconstruct: ReconstructOutputs | None = None
    metrics: MetricsOutputs | None = None
    latent: LatentOutputs | None = None
    attention: AttentionOutputs | None = None
    weights: WeightsOutputs | None = None
    summary: gr.Markdown | None = None  # About: where the models came from
    verdicts: gr.Markdown | None = None  # About: the claims' verdicts
    timer: gr.Timer | None = None  # fills the dataset tabs in once the analysis is done
