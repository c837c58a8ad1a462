"""`mae-hf report`: load both models and the data, `run_analysis`, and write `report.md`, a self-contained
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
from ..analysis.attention import upsample_grid
from ..analysis.reconstruction import PAIRS
from ..labels import FEATURE_LABELS, FEATURE_SETS, PAIR_LABELS
from ..loading import load_dae, load_mae
from .cache import DEFAULT_CACHE_DIR, AnalysisCache, to_jsonable
from .data import load_report_data
from .document import report_document
from .pipeline import STAGES, AnalysisResult, ReportSettings, run_analysis

logger = logging.getLogger(__name__)

__all__ = ["REPORT_FILES", "stage_progress", "report_figures", "write_report", "make_report"]

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
    "attention_layers.png",
    "attention_layers_masked.png",
    "attention_saliency.png",
    "weights_dae.png",
    "weights_mae.png",
)


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


def report_figures(result: AnalysisResult, n_show: int = 8) -> dict:
    """Every figure of the report, `{filename: Figure}`, from the result's arrays."""
    ex, figures = result.examples, {}
    mm, dn, dm, mn = ex["mae_mask"], ex["dae_noise"], ex["dae_mask"], ex["mae_noise"]
    rows = {
        "original": ex["original"],
        "masked input": mm["corrupted"],
        "MAE output": mm["reconstruction"],
        "MAE, visible pasted": mm["shown"],
        "DAE on masked": dm["shown"],
        "noisy input": dn["corrupted"],
        "DAE output": dn["reconstruction"],
        "MAE on noisy": mn["reconstruction"],
    }
    psnr = result.per_image
    titles = [f"{a:.1f}/{b:.1f}" for a, b in zip(psnr["mae_mask"]["psnr"], psnr["dae_noise"]["psnr"])]
    figures["reconstructions.png"] = plotting.plot_image_rows(rows, n_show=n_show, titles=titles)[0]
    for metric, label in (("psnr", "PSNR (dB), [0, 1] range"), ("ssim", "SSIM")):
        values = {PAIR_LABELS[p]: psnr[f"{p[0]}_{p[1]}"][metric] for p in PAIRS}
        if metric == "psnr":
            values |= {"masked input": psnr["mae_mask"]["psnr_input"], "noisy input": psnr["dae_noise"]["psnr_input"]}
        figures[f"{metric}_hist.png"] = plotting.plot_metric_histograms(values, label)[0]
    lm = result.metrics["latents"]
    maps = {
        f"{FEATURE_LABELS[k]}\nsilhouette {lm[k]['silhouette']:.2f}": result.latent_maps[k]["coordinates"]
        for k in FEATURE_SETS
    }
    figures["tsne.png"] = plotting.plot_tsne_maps(maps, result.y)[0]
    names = list(lm["dae"]["tsne_radius"]["per_class"])  # the classes present among the analysed digits
    figures["radii.png"] = plotting.plot_radius_panels(
        {
            "t-SNE radius (the study's measure)": {
                FEATURE_LABELS[k]: list(lm[k]["tsne_radius"]["per_class"].values())
                for k in ("dae", "mae_masked_flat", "mae_mean")
            },
            "scale-free radius in the features": {
                FEATURE_LABELS[k]: list(lm[k]["scale_free_radius"]["per_class"].values()) for k in FEATURE_SETS
            },
        },
        names,
    )[0]
    a, x = result.attention, ex["original"]
    figures["attention_layers.png"] = plotting.plot_cls_attention(
        a["cls_maps"][:, 0], image=x[0], rollout=a["rollout"][0]
    )[0]
    figures["attention_layers_masked.png"] = plotting.plot_cls_attention(
        a["cls_maps_masked"][:, 0], image=mm["corrupted"][0], rollout=a["rollout_masked"][0]
    )[0]
    p = int(x.shape[-1] // a["rollout"].shape[-1])
    heats = {
        "rollout": upsample_grid(a["rollout"], p),
        "rollout, masked": upsample_grid(a["rollout_masked"], p),
        "study: attn × pixels": a["study_heatmap"],
        "DAE saliency": a["dae_saliency"],
        "MAE saliency": a["mae_saliency"],
        "MAE saliency, masked": a["mae_saliency_masked"],
    }
    masks = {"rollout, masked": a["pixel_mask"], "MAE saliency, masked": a["pixel_mask"]}
    figures["attention_saliency.png"] = plotting.plot_overlay_row(x, heats, masks, n_show=min(n_show, 6))[0]
    for name in ("dae", "mae"):
        h = result.weights[name]
        figures[f"weights_{name}.png"] = plotting.plot_weight_histograms(
            h["trained"], h["init"], title=f"{name.upper()} weights per layer: trained (filled) vs init (outline)"
        )[0]
    return figures


def _write_per_image(result: AnalysisResult, path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "label", "model", "corruption", "psnr", "ssim", "psnr_input", "psnr_masked"])
        for model, corruption in PAIRS:
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
        meta: `{"dae", "mae", "dataset", "split"}` as given on the command line (shown in the report).
        curves: `{"dae"|"mae": learning_curve rows}` (the model folders' `learning_curve.json`), drawn as
            `learning_curves.png` when given.

    Returns:
        `{filename: path}` for every file of `REPORT_FILES`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings = result.metrics["timings_s"]
    t = time.perf_counter()
    figures = report_figures(result, n_show)
    if curves:
        figures["learning_curves.png"] = plotting.plot_learning_curves(curves)[0]
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
    return {name: out / name for name in REPORT_FILES}


def make_report(
    dae: str,
    mae: str,
    dataset: str = "mnist",
    split: str = "test",
    out: str | os.PathLike = "report",
    settings: ReportSettings | None = None,
    cache_dir: str | os.PathLike | None = DEFAULT_CACHE_DIR,
    progress: bool = True,
    full_train: str | None = None,
) -> AnalysisResult:
    """
    `mae-hf report`: load the models and data, run the analysis, write the files.

    Args:
        dae, mae: local folders or Hub ids. dataset: any `load_image_dataset` source. split: the analysed split.
        out: output folder. settings: `ReportSettings` (n, seed, ...). cache_dir: `None` disables the cache.
        progress: one progress bar over the analysis's stages.
        full_train: a source whose whole train split the scorecard's classifiers are also fit on.
    """
    settings = settings or ReportSettings()
    if not settings.scorecard and (full_train is not None or settings.scorecard_n is not None):
        raise ValueError(
            "--full_train and --scorecard_n only change the scorecard, which is off: add --scorecard "
            "(ReportSettings(scorecard=True))."
        )
    t = time.perf_counter()
    dae_model, mae_model = load_dae(dae), load_mae(mae)
    cache = AnalysisCache(cache_dir)
    data = load_report_data(
        dataset, split, settings.n, settings.n_train, dae_model, mae_model, cache, full_train, settings.scorecard_n
    )
    load_s = time.perf_counter() - t
    with stage_progress(len(STAGES), enabled=progress) as on_stage:
        result = run_analysis(dae_model, mae_model, data, settings, cache, on_stage=on_stage)
    result.metrics["timings_s"] = {"load": load_s, **result.metrics["timings_s"]}
    curves = {
        name: json.loads((Path(folder) / "learning_curve.json").read_text())
        for name, folder in (("dae", dae), ("mae", mae))
        if (Path(folder) / "learning_curve.json").is_file()
    }
    meta = {"dae": str(dae), "mae": str(mae), "dataset": dataset, "split": split, "full_train": full_train}
    write_report(result, out, meta, settings.n_show, curves)
    logger.debug("Report written to %s (%.1f s)", out, sum(result.metrics["timings_s"].values()))
    return result
