"""`mae-hf report`: load the models and the data, `run_analysis`, and write `report.md`, a self-contained
`report.html`, `metrics.json`, `per_image.csv` and the figures. The only part of the report that touches files."""

import csv
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tqdm.auto import tqdm

from .. import plotting
from ..analysis.attention import attention_overlays
from ..analysis.reconstruction import pairs_of
from ..labels import CORRUPTED, pair_label
from ..loading import load_models
from ..pipeline import (
    DEFAULT_CACHE_DIR,
    STAGES,
    AnalysisCache,
    AnalysisResult,
    DataSettings,
    ReportSettings,
    load_analysis_data,
    run_analysis,
    to_jsonable,
)
from ..registry import feature_label, model_label
from .document import report_document

logger = logging.getLogger(__name__)

__all__ = ["REPORT_FILES", "report_files", "stage_progress", "report_figures", "write_report", "make_report"]

# Every report has these; `report_files` adds the attention figures where a model has attention maps, and one
# weight-histogram figure per model.
REPORT_FILES = (
    "report.md",
    "report.html",
    "metrics.json",
    "per_image.csv",
    "reconstructions.png",
    "psnr_hist.png",
    "ssim_hist.png",
    "tsne.png",
    "radii.png",
)
ATTENTION_FILES = ("attention_layers.png", "attention_layers_masked.png", "attention_saliency.png")


def report_files(result: AnalysisResult) -> tuple[str, ...]:
    """The files `write_report` writes for `result`."""
    attention = ATTENTION_FILES if result.attention else ()
    return (*REPORT_FILES, *attention, *(f"weights_{name}.png" for name in result.weights))


@contextmanager
def stage_progress(n_stages: int, enabled: bool = True, desc: str = "analysis") -> Iterator[Callable]:
    """
    One progress bar over the analysis's stages; yields the `on_stage(name, index, n_stages)` callback that
    `run_analysis` calls as each stage starts. Each stage is drawn once, and the finished bar once, when it closes.
    """
    with tqdm(total=n_stages, desc=desc, disable=not enabled) as bar:

        def on_stage(name: str, index: int, _: int) -> None:
            bar.n = index
            bar.set_postfix_str(name.replace("_", " "))  # draws the bar (once)

        yield on_stage
        bar.n = n_stages
        bar.set_postfix_str("done", refresh=False)  # drawn by the bar's close


def _reconstruction_rows(result: AnalysisResult) -> tuple[dict, list[str]]:
    """The reconstruction figure's rows: the originals; then per corruption, its input and every model's output
    (under masking with the visible patches pasted back, and the raw output of the model made for masking); titles:
    the PSNR of the first two models, each under its own corruption."""
    ex, own = result.examples, result.metrics["reconstruction"].get("own", {"mae": "mask", "dae": "noise"})
    rows = {"original": ex["original"]}
    for corruption in ("mask", "noise"):
        pairs = [(m, c) for m, c in pairs_of(result.metrics["reconstruction"]) if c == corruption]
        rows[f"{CORRUPTED[corruption]} input"] = ex[f"{pairs[0][0]}_{corruption}"]["corrupted"]
        for model, _ in pairs:
            e, label = ex[f"{model}_{corruption}"], model_label(model)
            if corruption == "mask" and own.get(model) == "mask":
                rows[f"{label} output"] = e["reconstruction"]
            rows[f"{label}, visible pasted" if corruption == "mask" else f"{label} on {CORRUPTED[corruption]}"] = e[
                "shown"
            ]
    first = [(m, c) for m, c in own.items()][:2]
    psnr = [result.per_image[f"{m}_{c}"]["psnr"] for m, c in first]
    titles = ["/".join(f"{v[i]:.1f}" for v in psnr) for i in range(len(ex["original"]))]
    return rows, titles


def report_figures(result: AnalysisResult, n_show: int = 8) -> dict:
    """Every figure of the report, `{filename: Figure}`, from the result's arrays."""
    figures = {}
    rows, titles = _reconstruction_rows(result)
    figures["reconstructions.png"] = plotting.plot_image_rows(rows, n_show=n_show, titles=titles)[0]
    psnr, own = result.per_image, result.metrics["reconstruction"].get("own", {"mae": "mask", "dae": "noise"})
    pairs = pairs_of(result.metrics["reconstruction"])
    for metric, label in (("psnr", "PSNR (dB), [0, 1] range"), ("ssim", "SSIM")):
        values = {pair_label(m, c, own.get(m) == c): psnr[f"{m}_{c}"][metric] for m, c in pairs}
        if metric == "psnr":
            for corruption in ("mask", "noise"):
                model = next(m for m, c in pairs if c == corruption)
                values[f"{CORRUPTED[corruption]} input"] = psnr[f"{model}_{corruption}"]["psnr_input"]
        figures[f"{metric}_hist.png"] = plotting.plot_metric_histograms(values, label)[0]
    lm = result.metrics["latents"]
    maps = {
        f"{feature_label(k)}\nsilhouette {lm[k]['silhouette']:.2f}": result.latent_maps[k]["coordinates"]
        for k in result.latent_maps
    }
    figures["tsne.png"] = plotting.plot_tsne_maps(maps, result.y)[0]
    learned = [k for k in result.latent_maps if k != "raw_pixels"]
    names = list(lm[learned[0]]["tsne_radius"]["per_class"])  # the classes present among the analysed images
    figures["radii.png"] = plotting.plot_radius_panels(
        {
            "t-SNE radius (the study's measure)": {
                feature_label(k): list(lm[k]["tsne_radius"]["per_class"].values()) for k in learned
            },
            "scale-free radius in the features": {
                feature_label(k): list(lm[k]["scale_free_radius"]["per_class"].values()) for k in result.latent_maps
            },
        },
        names,
    )[0]
    if result.attention:
        figures |= _attention_figures(result, n_show)
    for name, h in result.weights.items():
        figures[f"weights_{name}.png"] = plotting.plot_weight_histograms(
            h["trained"],
            h["init"],
            title=f"{model_label(name)} weights per layer: trained (filled) vs init (outline)",
        )[0]
    return figures


def _attention_figures(result: AnalysisResult, n_show: int) -> dict:
    """The attending model's CLS attention (masking off and under the mask) and the overlays of rollout and every
    model's saliency."""
    a, x, name = result.attention, result.examples["original"], result.metrics["attention"]["model"]
    figures = {}
    figures["attention_layers.png"] = plotting.plot_cls_attention(
        a["cls_maps"][:, 0], image=x[0], rollout=a["rollout"][0]
    )[0]
    figures["attention_layers_masked.png"] = plotting.plot_cls_attention(
        a["cls_maps_masked"][:, 0],
        image=result.examples[f"{name}_mask"]["corrupted"][0],
        rollout=a["rollout_masked"][0],
    )[0]
    models = result.metrics["reconstruction"].get("models") or ["dae", "mae"]
    heats, masks = attention_overlays(
        a["rollout"],
        a["rollout_masked"],
        {m: a[f"{m}_saliency"] for m in models if f"{m}_saliency" in a},
        a[f"{name}_saliency_masked"],
        a["pixel_mask"],
        name,
        int(x.shape[-1] // a["rollout"].shape[-1]),
        study_heatmap=a["study_heatmap"],
    )
    figures["attention_saliency.png"] = plotting.plot_overlay_row(x, heats, masks, n_show=min(n_show, 6))[0]
    return figures


def _write_per_image(result: AnalysisResult, path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "label", "model", "corruption", "psnr", "ssim", "psnr_input", "psnr_masked"])
        for model, corruption in pairs_of(result.metrics["reconstruction"]):
            m = result.per_image[f"{model}_{corruption}"]
            for i in range(len(result.y)):
                w.writerow(
                    [i, int(result.y[i]), model, corruption]
                    + [f"{m[k][i]:.6g}" if k in m else "" for k in ("psnr", "ssim", "psnr_input", "psnr_masked")]
                )


def write_report(
    result: AnalysisResult, out_dir: str | os.PathLike, meta: dict, n_show: int = 8, curves: dict | None = None
) -> dict[str, Path]:
    """
    Write the report files into `out_dir` (created if missing), each to a temporary name first.

    Args:
        result: what `run_analysis` returned.
        meta: `{"models": {name: source}, "dataset", "split"}` as given on the command line (shown in the report).
        curves: `{model name: learning_curve rows}` (the model folders' `learning_curve.json`), drawn as
            `learning_curves.png` when given.

    Returns:
        `{filename: path}` for every file of `report_files(result)`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings = result.metrics["timings_s"]
    t = time.perf_counter()
    figures = report_figures(result, n_show)
    if curves:
        labels = {name: model_label(name) for name in curves}
        figures["learning_curves.png"] = plotting.plot_learning_curves(curves, labels)[0]
    for name, fig in figures.items():
        fig.savefig(out / f".tmp-{name}", dpi=80, format="png")
        os.replace(out / f".tmp-{name}", out / name)
    timings["figures"] = time.perf_counter() - t
    t = time.perf_counter()
    _write_per_image(result, out / "per_image.csv")
    metrics = result.metrics | {"meta": meta} | ({"learning_curves": curves} if curves else {})
    doc = report_document(metrics, meta)
    (out / "report.md").write_text(doc.markdown())
    (out / "report.html").write_text(doc.html(out))
    timings["write"] = time.perf_counter() - t
    (out / "metrics.json").write_text(json.dumps(to_jsonable(metrics), indent=1) + "\n")
    return {name: out / name for name in report_files(result)}


def make_report(
    models: dict,
    data: DataSettings | None = None,
    out: str | os.PathLike = "report",
    settings: ReportSettings | None = None,
    cache_dir: str | os.PathLike | None = DEFAULT_CACHE_DIR,
    progress: bool = True,
) -> AnalysisResult:
    """
    `mae-hf report`: load the models and data, run the analysis, write the files.

    Args:
        models: `{kind name: folder or Hub id}` (`mae_hf.registry`), e.g. `{"dae": ..., "mae": ...}`.
        data: which images (`DataSettings`: dataset, split, n, n_train, scorecard_n, full_train).
        out: output folder. settings: `ReportSettings` (seed, corruptions, scorecard, ...). cache_dir: `None`
            disables the cache.
        progress: one progress bar over the analysis's stages.
    """
    data = data or DataSettings()
    settings = settings or ReportSettings()
    if not settings.scorecard and (data.full_train is not None or data.scorecard_n is not None):
        raise ValueError(
            "--full_train and --scorecard_n only change the scorecard, which is off: add --scorecard "
            "(ReportSettings(scorecard=True))."
        )
    t = time.perf_counter()
    loaded = load_models(models).models
    cache = AnalysisCache(cache_dir)
    images = load_analysis_data(data, loaded, cache)
    load_s = time.perf_counter() - t
    with stage_progress(len(STAGES), enabled=progress) as on_stage:
        result = run_analysis(loaded, images, settings, cache, on_stage=on_stage)
    result.metrics["timings_s"] = {"load": load_s, **result.metrics["timings_s"]}
    curves = {
        name: json.loads((Path(folder) / "learning_curve.json").read_text())
        for name, folder in models.items()
        if (Path(folder) / "learning_curve.json").is_file()
    }
    meta = {"models": {name: str(folder) for name, folder in models.items()}, "dataset": data.dataset}
    meta |= {"split": data.split, "full_train": data.full_train} | {name: str(f) for name, f in models.items()}
    write_report(result, out, meta, settings.n_show, curves)
    logger.debug("Report written to %s (%.1f s)", out, sum(result.metrics["timings_s"].values()))
    return result
