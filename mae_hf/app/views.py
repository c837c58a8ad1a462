"""What the app's tabs show, from arrays and metrics: images (uint8 arrays), table rows and Markdown. Figures come
from `mae_hf.plotting` (titles inside the figures, so the page's label badges never cover them); tables from
`mae_hf.tables`, the report's own."""

import json
from pathlib import Path

import numpy as np

from ..labels import CORRUPTED, MEASURE_HELP, pair_label
from ..registry import feature_label, model_label

__all__ = [
    "DISPLAY_SCALE",
    "to_uint8",
    "reconstruct_slots",
    "reconstruct_views",
    "attention_figures",
    "attention_summary",
    "latent_map_images",
    "dataset_views",
    "verdicts_markdown",
    "model_summary",
    "study_grid_markdown",
    "across_datasets_markdown",
    "answer_from_results",
]

DISPLAY_SCALE = 4  # 28×28 → 112×112 by nearest neighbour; the browser enlarges further with crisp pixels


def to_uint8(digit: np.ndarray) -> np.ndarray:
    """[0, 1] floats → uint8, the form the current digit is stored in (a lossless PNG)."""
    return np.round(np.clip(digit, 0.0, 1.0) * 255).astype(np.uint8)


def reconstruct_slots(name: str) -> tuple[str, ...]:
    """The images the Reconstruct tab shows for a model of kind `name`, in order: its input and its reconstruction,
    and for a kind that masks its own input (made for masking) the visible patches pasted back too."""
    from ..registry import MODEL_KINDS

    kind = MODEL_KINDS.get(name)
    pastes = kind is not None and kind.masked_reconstruct is not None and kind.default_corruption == "mask"
    return ("input", "reconstruction", "pasted") if pastes else ("input", "reconstruction")


def reconstruct_views(
    models: dict, pixel_values, mask_ratio: float, noise_factor: float, seed: int, corruption: str
) -> tuple[dict[str, dict[str, np.ndarray]], str]:
    """
    One picture corrupted and reconstructed by every model (`mae_hf.comparison.compare_reconstructions`), as the
    Reconstruct tab shows it: `{model: {"input": its input (hidden patches in blue), "reconstruction", and for a
    model that masks its own input "pasted": the visible patches pasted back}}` (`reconstruct_slots`; each enlarged
    `DISPLAY_SCALE`×), and the PSNR/SSIM table (Markdown). Raises `ValueError` / `TypeError` for a bad setting.
    """
    from ..comparison import compare_reconstructions, metrics_table, to_display
    from ..tables import markdown_table

    r = compare_reconstructions(
        models, pixel_values, mask_ratio=mask_ratio, noise_factor=noise_factor, seed=seed, corruption=corruption
    )
    shown = {}
    for name, c in r.models.items():
        images = {
            "input": to_display(c.input, DISPLAY_SCALE, c.pixel_mask),
            "reconstruction": to_display(c.reconstruction, DISPLAY_SCALE),
        }
        if "pasted" in reconstruct_slots(name):
            images["pasted"] = to_display(c.pasted if c.pasted is not None else c.reconstruction, DISPLAY_SCALE)
        shown[name] = images
    return shown, markdown_table(*metrics_table(r.metrics))


def attention_figures(image, maps: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CLS-attention figures (masking off / under the mask) and the overlay row, as images."""
    from .. import plotting
    from ..analysis.attention import attention_overlays

    plain, _ = plotting.plot_cls_attention(maps["cls_maps"], image=image, rollout=maps["rollout"])
    masked, _ = plotting.plot_cls_attention(
        maps["cls_maps_masked"], image=maps["masked_input"], rollout=maps["rollout_masked"]
    )
    heats, masks = attention_overlays(
        maps["rollout"],
        maps["rollout_masked"],
        maps["saliency"],
        maps["saliency_masked"],
        maps["pixel_mask"],
        maps["model"],
        image.shape[-1] // maps["rollout"].shape[-1],
    )
    row, _ = plotting.plot_overlays(image, heats, masks)
    return tuple(plotting.figure_to_rgb(f, dpi=100) for f in (plain, masked, row))


def attention_summary(maps: dict, mask_ratio: float) -> str:
    """Markdown: where the rollout and the saliencies put their weight, in numbers."""
    g = maps["rollout"].shape[-1]
    top = np.unravel_index(np.nanargmax(maps["rollout"]), maps["rollout"].shape)
    masked_patches = int(maps["pixel_mask"].sum() / (maps["pixel_mask"].shape[0] // g) ** 2)
    leak = float((maps["saliency_masked"] * maps["pixel_mask"]).max())
    return (
        f"Rollout puts the most weight on patch (row {top[0]}, column {top[1]}) of the {g}×{g} grid "
        f"({np.nanmax(maps['rollout']):.1%} of the total). Under the mask ({mask_ratio:.0%}: {masked_patches} of "
        f"{g * g} patches hidden, grey) the {model_label(maps['model'])}'s saliency inside hidden patches is "
        f"{leak:.3g}: the encoder never sees them. Each panel is scaled to its own maximum."
    )


def latent_map_images(result, keys: tuple[str, ...], placements: dict) -> list[np.ndarray]:
    """One t-SNE map per feature set of `keys` (so a narrow page stacks them), each titled inside its panel with
    its silhouette and 5-NN accuracy, the legend below it, the placed digit as a star."""
    from .. import plotting
    from ..tables import fmt

    lm, images = result.metrics["latents"], []
    for k in keys:
        title = f"{feature_label(k)}\nsilhouette {fmt(lm[k]['silhouette'], 2)}, 5-NN {fmt(lm[k]['knn_accuracy'], 2)}"
        stars = {title: placements[k]["coordinates"][None]} if k in placements else {}
        fig, _ = plotting.plot_tsne_maps({title: result.latent_maps[k]["coordinates"]}, result.y, 5.0, stars)
        images.append(plotting.figure_to_rgb(fig, dpi=90))
    return images


def dataset_views(result, noun: str = "digits") -> dict:
    """Every dataset-level image and table of the Metrics, Latent and Weights tabs (rendered once, then shared)."""
    from .. import plotting, tables
    from ..analysis.reconstruction import pairs_of

    views = {}
    rec = result.metrics["reconstruction"]
    own, pairs = rec.get("own", {"mae": "mask", "dae": "noise"}), pairs_of(rec)
    for metric, label in (("psnr", "PSNR (dB) on [0, 1]"), ("ssim", "SSIM")):
        values = {pair_label(m, c, own.get(m) == c, noun): result.per_image[f"{m}_{c}"][metric] for m, c in pairs}
        if metric == "psnr":
            for corruption in ("mask", "noise"):
                model = next(m for m, c in pairs if c == corruption)
                values[f"{CORRUPTED[corruption]} input"] = result.per_image[f"{model}_{corruption}"]["psnr_input"]
        fig, ax = plotting.plot_metric_histograms(values, label)
        fig.set_size_inches(7.2, 4.0)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        fig.tight_layout()
        views[metric] = plotting.figure_to_rgb(fig, dpi=90)
    m = result.metrics
    views["metrics_table"] = tables.markdown_table(*tables.reconstruction_table(m["reconstruction"]))
    views["radius_table"] = tables.markdown_table(*tables.radius_table(m["latents"]))
    views["measures_table"] = tables.markdown_table(*tables.latent_table(m["latents"]))
    views["weights_table"] = tables.markdown_table(*tables.weights_table(m["weights"]))
    for name, h in result.weights.items():
        fig, _ = plotting.plot_weight_histograms(
            h["trained"],
            h["init"],
            ncols=3,
            title=f"{model_label(name)} weights per layer: trained (filled) vs init (outline)",
        )
        views[f"weights_{name}"] = plotting.figure_to_rgb(fig, dpi=90)
    return views


def verdicts_markdown(result) -> str:
    """The claims H1–H3 on the app's own analysis, each with its measures in words, both models' numbers and whether
    the claim holds under each."""
    from ..tables import markdown_table, verdict_summary, verdict_table

    out = []
    for key, v in result.metrics["verdicts"].items():
        out += [f"#### {key}: {v['claim']}", f"**{verdict_summary(v)}**", "", markdown_table(*verdict_table(v)), ""]
    s = result.metrics["settings"]
    out.append(
        f"*Computed by the analysis engine on {s['n']} test and {s['n_train']} training digits; `mae-hf report` "
        "writes the full report.*"
    )
    return "\n".join(out)


def _where(source: str) -> str:
    path = Path(source)
    return f"the folder `{path.name}`" if path.exists() else f"`{source}` (Hugging Face Hub)"


def model_summary(models) -> str:
    """Markdown: where each model came from (a folder's name, never a server path), its size and shape, its card."""
    from ..evaluation import own_corruption
    from ..loading import count_parameters
    from ..registry import kind_of
    from ..tables import MODEL_SOURCE_HEADERS, markdown_table

    rows = []
    for name, model in models.models.items():
        kind, own = kind_of(model), own_corruption(model)
        trained = own.describe().replace("patch mask", "patch masking")
        architecture = kind.describe(model.config) if kind.describe else kind.description
        rows.append(
            [
                kind.label,
                _where(models.sources[name]),
                f"{count_parameters(model):,}",
                f"{architecture}; trained with {trained}",
            ]
        )
    lines = [markdown_table(MODEL_SOURCE_HEADERS, rows)]
    for name, source in models.sources.items():
        card = Path(source) / "README.md"
        if card.is_file():
            text = card.read_text()
            body = text.split("---", 2)[2] if text.startswith("---") else text  # without the YAML front matter
            lines += ["", f"<details><summary>{model_label(name)} model card</summary>\n\n{body}\n\n</details>"]
    return "\n".join(lines)


GRID_ROWS = (
    ("psnr_masked", "PSNR on masked digits, masked pixels (dB)", 2),
    ("psnr_noisy", "PSNR on noisy digits (dB)", 2),
    ("scale_free_radius", "scale-free class radius (lower = tighter)", 3),
    ("knn_accuracy", "5-NN accuracy", 3),
    ("probe_accuracy", "linear-probe accuracy", 3),
)


def _read_json(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def answer_from_results(metrics_path: Path | None, study_path: Path | None) -> str:
    """The short answer to each claim, in words (`mae_hf.answer`), from the committed results: the shipped models'
    report and the study (either may be missing, or None where there is none)."""
    from ..answer import answer_markdown

    metrics, study = _read_json(metrics_path), _read_json(study_path)
    if metrics is None and study is None:
        return "*No results yet: `make report` and `make study` write them.*"
    return answer_markdown(metrics, study)


def across_datasets_markdown(studies: dict[str, Path | None]) -> str:
    """Each claim of the study on every dataset (`mae_hf.across_datasets`: `{dataset name: its study.json}`, a missing
    one "no results yet"), for the About tab: the table docs/STUDY.md opens with."""
    from ..across_datasets import across_markdown

    return "#" + across_markdown({name: _read_json(path) for name, path in studies.items()})


def study_grid_markdown(path: Path | None) -> str:
    """The architecture × corruption study (docs/study/study.json) for the About tab: each claim's verdict at every
    training budget, and the grid, with each cell's size, at the largest budget with enough seeds for a verdict."""
    head = "### Beyond the study: architecture × corruption, at every training budget\n\n"
    study = _read_json(path)
    if study is None:
        return (
            head + "*No study results yet: `make study` (MNIST) and `make study-fashion` (Fashion-MNIST) write them.*"
        )
    try:
        cells, budgets = study["cells"], study["budgets"]
        final = budgets[-1]
    except (KeyError, IndexError, TypeError):
        return head + (
            "*The study results here come from an earlier version of the study, without training budgets (4,000 "
            "digits; `docs/STUDY.md` says what they found); `make study` replaces them.*"
        )

    def ci(e, d):
        if e.get("ci_low") is None or e.get("ci_high") is None:
            return f"{e['estimate']:.{d}f}"
        return f"{e['estimate']:.{d}f} [{e['ci_low']:.{d}f}, {e['ci_high']:.{d}f}]"

    seen = [f"{b['images_seen']:,}" for b in budgets]
    tested = [b for b in budgets if b.get("tested", len(b["seeds"]) >= 3)]
    shown = tested[-1] if tested else final
    cells = {c: v for c, v in cells.items() if c in shown["summary"]}  # the cells analysed at that budget
    lines = [
        head + "The study compared a ViT trained with masking against a CNN trained with noise, so its differences "
        "could come from either factor. `mae-hf study` trains all four pairings on the same data and analyses "
        f"each at {len(budgets)} training budgets ({', '.join(seen)} images seen). A verdict needs 3 seeds (95% "
        "intervals over seeds); a budget with fewer is not tested. Full story: `docs/STUDY.md`.",
        "",
        "| claim | " + " | ".join(seen) + " |",
        "|" + " --- |" * (len(budgets) + 1),
        "| seeds | " + " | ".join(", ".join(map(str, b["seeds"])) for b in budgets) + " |",
    ]
    for cid, v in final["verdicts"].items():
        lines.append(f"| **{cid}** {v['claim']} | " + " | ".join(b["verdicts"][cid]["verdict"] for b in budgets) + " |")
    sizes = {c: v for c, v in cells.items() if "num_parameters" in v}
    lines += [
        "",
        f"The grid at {shown['images_seen']:,} images seen, "
        + (
            f"the largest budget tested: mean over seeds {', '.join(map(str, shown['seeds']))} [95% interval over "
            "seeds]:"
            if tested
            else f"seed{'s' * (len(shown['seeds']) > 1)} {', '.join(map(str, shown['seeds']))}, fewer than a "
            "verdict needs (not tested):"
        ),
        "",
        "| measure | " + " | ".join(cells[c]["label"] for c in cells) + " | architecture effect | corruption effect |",
        "| --- |" + " --- |" * (len(cells) + 2),
    ]
    if len(sizes) == len(cells):
        lines.append(
            "| parameters (feature size) | "
            + " | ".join(f"{v['num_parameters']:,} ({v['feature_size']})" for v in sizes.values())
            + " | | |"
        )
    for key, label, d in GRID_ROWS:
        if key not in shown["effects"]:
            continue
        eff = [
            ("**" + ci(shown["effects"][key][e], d) + "**")
            if shown["effects"][key][e]["significant"]
            else ci(shown["effects"][key][e], d)
            for e in ("architecture", "corruption")
        ]
        lines.append(
            f"| {label} | "
            + " | ".join(ci(shown["summary"][c][key], d) for c in cells)
            + " | "
            + " | ".join(eff)
            + " |"
        )
    lines += [
        "",
        "Effects: architecture = ViT − CNN, corruption = masking − noise (bold: the interval over seeds excludes "
        "0). " + MEASURE_HELP["scale_free_radius"],
    ]
    return "\n".join(lines)
