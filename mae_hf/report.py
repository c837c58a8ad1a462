"""The report writer: load both models and the data, run every analysis (latents and t-SNE maps cached, keyed by
model-weights hash + data), and write `report.md`, a self-contained `report.html`, `metrics.json`,
`per_image.csv` and the PNG figures. The only module of the analysis that touches files.

`run_analysis` returns everything as numbers and arrays, so the app can reuse it (and the cache) without writing
a report; `write_report` turns its result into files; `make_report` is what `mae-hf report` calls.
"""

import base64
import copy
import csv
import hashlib
import html
import json
import logging
import math
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm
from transformers import ViTMAEForPreTraining

from . import plotting
from .analysis import attention as att
from .analysis import clustering as cl
from .analysis import latents as lat
from .analysis import reconstruction as rec
from .analysis import saliency as sal
from .analysis import verdicts as ver
from .analysis import weights as wts
from .data import dataset_to_tensors, load_image_dataset
from .loading import load_dae, load_mae
from .mae import MAE_PRESETS, build_mae, mae_attentions
from .metrics import compute_psnr, compute_ssim
from .modeling_dae import DAEModel

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CACHE_DIR",
    "ReportSettings",
    "AnalysisCache",
    "model_fingerprint",
    "init_models",
    "load_report_data",
    "compute_latent_maps",
    "run_analysis",
    "write_report",
    "make_report",
    "REPORT_FILES",
]

DEFAULT_CACHE_DIR = Path(os.environ.get("MAE_HF_CACHE", Path.home() / ".cache" / "mae_hf"))
CACHE_VERSION = 1
REPORT_FILES = (
    "report.md", "report.html", "metrics.json", "per_image.csv",
    "reconstructions.png", "psnr_hist.png", "ssim_hist.png", "tsne.png", "radii.png",
    "attention_layers.png", "attention_layers_masked.png", "attention_saliency.png",
    "weights_dae.png", "weights_mae.png",
)
# The study's own numbers, quoted for context in the report text (not used in any computation).
STUDY_NUMBERS = {
    "tsne_radius": {"mae": (3.6, 11.6), "dae": (12.1, 21.1)},
    "original_radius": {"mae": (36.0, 45.0), "dae": (8.5, 10.7)},
}


@dataclass
class ReportSettings:
    """
    Everything that changes the report's numbers (stored in `metrics.json` under `settings`).

    Attributes:
        n: test images analysed. n_train: train images the kNN / linear probe are fit on.
        seed: seeds masks, noise, the study's masked latents and t-SNE. init_seed: seed of the models rebuilt at
            initialisation for the weight comparison.
        mask_ratio / noise_factor: corruptions (default: each model's own config).
        study_mask_ratio: masking of the study's masked-flattened MAE latent.
        n_attention: images for attention/saliency statistics. n_show: images in each figure.
        eps_abs / eps_rel: near-zero thresholds (absolute, and × each layer's std).
        knn_k: neighbours of the kNN classifier. ink_threshold: a patch "has ink" if its mean pixel exceeds it.
    """

    n: int = 1000
    n_train: int = 2000
    seed: int = 0
    init_seed: int = 0
    mask_ratio: float | None = None
    noise_factor: float | None = None
    study_mask_ratio: float = 0.75
    n_attention: int = 256
    n_show: int = 8
    eps_abs: float = wts.DEFAULT_EPS_ABS
    eps_rel: float = wts.DEFAULT_EPS_REL
    knn_k: int = 5
    ink_threshold: float = 0.1


# ----------------------------------------------------------------------------------------------------------------
# Loading


def model_fingerprint(model: torch.nn.Module) -> str:
    """A short sha256 of the model's class and every state-dict tensor (names, shapes, values)."""
    h = hashlib.sha256(type(model).__name__.encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def _array_fingerprint(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        h.update(str((a.dtype, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:20]


def init_models(dae: DAEModel, mae: ViTMAEForPreTraining, seed: int = 0) -> tuple[DAEModel, ViTMAEForPreTraining]:
    """
    Both models as they were at initialisation under `seed`: `DAEModel(config)` under `torch.manual_seed(seed)` and
    `build_mae(seed=seed)` with the trained model's architecture.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        dae_init = DAEModel(copy.deepcopy(dae.config)).eval()
    arch = {k: getattr(mae.config, k) for k in MAE_PRESETS["mnist"]}
    mae_init = build_mae("mnist", seed=seed, **arch).eval()
    return dae_init, mae_init


# ----------------------------------------------------------------------------------------------------------------
# Cache


class AnalysisCache:
    """
    Arrays cached as `.npz` under `cache_dir`, keyed by a hash of everything they depend on. `cache_dir=None`
    disables caching. A damaged file is recomputed.
    """

    def __init__(self, cache_dir: str | os.PathLike | None = DEFAULT_CACHE_DIR):
        self.dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(*parts) -> str:
        return hashlib.sha256(json.dumps([CACHE_VERSION, *parts], sort_keys=True, default=str).encode()).hexdigest()[:24]

    def arrays(self, name: str, key_parts: list, compute) -> dict[str, np.ndarray]:
        """`compute()` → `{name: array}`, loaded from the cache when the same `key_parts` were computed before."""
        if self.dir is None:
            self.misses += 1
            return compute()
        path = self.dir / f"{name}-{self.key(*key_parts)}.npz"
        if path.is_file():
            try:
                with np.load(path) as f:
                    out = {k: f[k] for k in f.files}
                self.hits += 1
                return out
            except (OSError, ValueError) as err:
                logger.warning("Cache file %s is unreadable (%s); recomputing.", path, err)
        out = compute()
        self.misses += 1
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **out)
        os.replace(tmp, path)
        return out


# ----------------------------------------------------------------------------------------------------------------
# Data


def _source_fingerprint(dataset: str) -> list:
    """What identifies a dataset source's content: its name, plus sizes and mtimes of local files."""
    path = Path(dataset).expanduser()
    if not path.exists():
        return [dataset]
    files = sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
    return [str(path.resolve())] + [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]


def load_report_data(
    dataset: str,
    split: str,
    n: int,
    n_train: int,
    dae: DAEModel | None = None,
    mae: ViTMAEForPreTraining | None = None,
    cache: "AnalysisCache | None" = None,
) -> dict:
    """
    The analysed images (first `n` of `split`) and the images the classifiers are fit on (first `n_train` of
    `train`; when `split` is `train`, the `n_train` rows after the analysed ones).

    Args:
        dae, mae: when given, the images must be of the size and channels they take (and theirs must agree).
        cache: caches the decoded tensors, keyed by the source (and local files' sizes and mtimes), split and sizes.

    Returns:
        `{"x": (n, C, H, W), "y": (n,), "train_x", "train_y", "class_names": list[str]}`.

    Raises:
        ValueError: unknown split, `n` larger than the split, images of another size than the models take.
    """
    models = [m for m in (dae, mae) if m is not None]
    if len(models) == 2 and (dae.config.image_size, dae.config.num_channels) != (mae.config.image_size, mae.config.num_channels):
        raise ValueError(
            f"The DAE takes {dae.config.num_channels}x{dae.config.image_size}x{dae.config.image_size} images but the "
            f"MAE {mae.config.num_channels}x{mae.config.image_size}x{mae.config.image_size}; compare two models "
            "trained on the same image size."
        )
    cache = cache or AnalysisCache(None)
    key = [_source_fingerprint(dataset), split, n, n_train]
    loaded = cache.arrays("data", key, lambda: _decode_report_data(dataset, split, n, n_train))
    x, y = torch.from_numpy(loaded["x"]), torch.from_numpy(loaded["y"])
    c, s = (models[0].config.num_channels, models[0].config.image_size) if models else tuple(x.shape[1:3])
    if tuple(x.shape[1:]) != (c, s, s):
        raise ValueError(
            f"The {dataset!r} images are {x.shape[1]}x{x.shape[2]}x{x.shape[3]} (CxHxW) but the models take {c}x{s}x{s}; "
            "use a dataset of the models' image size, or models trained on this one."
        )
    return {"x": x, "y": y, "train_x": torch.from_numpy(loaded["train_x"]), "train_y": torch.from_numpy(loaded["train_y"]),
            "class_names": [str(c) for c in loaded["class_names"]]}


def _decode_report_data(dataset: str, split: str, n: int, n_train: int) -> dict[str, np.ndarray]:
    data = load_image_dataset(dataset)
    if split not in data:
        raise ValueError(f"Dataset {dataset!r} has no split {split!r}; choose one of {list(data)}.")
    ds, train = data[split], data["train"]
    if not 1 <= n <= len(ds):
        raise ValueError(f"--n {n} is larger than the {split!r} split of {dataset!r} ({len(ds)} images); use --n {len(ds)} or less.")
    offset = n if split == "train" else 0
    n_train = min(n_train, len(train) - offset)
    if n_train < 10:
        raise ValueError(f"Only {n_train} train images are left to fit the classifiers on; lower --n.")
    x, y = dataset_to_tensors(ds, n=n)
    train_x, train_y = dataset_to_tensors(train.select(range(offset, offset + n_train)))
    if train_x.shape[1:] != x.shape[1:]:
        raise ValueError(f"The {dataset!r} train images are {tuple(train_x.shape[1:])} but the {split!r} ones {tuple(x.shape[1:])}.")
    names = ds.features["label"].names if hasattr(ds.features["label"], "names") else sorted(map(str, set(y.tolist())))
    return {"x": x.numpy(), "y": y.numpy(), "train_x": train_x.numpy(), "train_y": train_y.numpy(),
            "class_names": np.array(names, dtype=str)}


# ----------------------------------------------------------------------------------------------------------------
# Analysis


def compute_latent_maps(
    dae, mae, x: torch.Tensor, train_x: torch.Tensor | None = None, seed: int = 0, study_mask_ratio: float = 0.75,
    cache: AnalysisCache | None = None, progress: bool = False,
) -> dict[str, dict[str, np.ndarray]]:
    """
    Every feature set of `FEATURE_SETS` for `x` (and `train_x`), and a 2-D t-SNE map of `x` per set; cached.

    Rebuild a map that can place new points with
    `mae_hf.analysis.tsne_from_coordinates(maps[key]["features"], maps[key]["coordinates"], seed=seed)`.

    Returns:
        `{key: {"features": (N, D), "coordinates": (N, 2), "train_features": (N_train, D) if train_x given}}`.
    """
    cache = cache or AnalysisCache(None)
    fp = [model_fingerprint(dae), model_fingerprint(mae), seed, study_mask_ratio]

    def features_of(images, tag):
        return cache.arrays(f"latents-{tag}", [*fp, _array_fingerprint(images)],
                            lambda: lat.extract_features(dae, mae, images, study_mask_ratio, seed))

    feats = features_of(x, "eval")
    train_feats = features_of(train_x, "train") if train_x is not None else None
    out = {}
    for key in tqdm(lat.FEATURE_SETS, desc="t-SNE", disable=not progress, leave=False):
        f = feats[key]
        with threadpool_limits(limits=1, user_api="blas"):
            coords = cache.arrays("tsne", [_array_fingerprint(f), seed, cl.TSNE_SETTINGS],
                                  lambda: {"coordinates": np.asarray(cl.fit_tsne(f, seed=seed))})["coordinates"]
        out[key] = {"features": f, "coordinates": coords}
        if train_feats is not None:
            out[key]["train_features"] = train_feats[key]
    return out


def _per_class(values: np.ndarray, classes, names) -> dict:
    return {
        "per_class": {names[int(c)] if int(c) < len(names) else str(c): float(v) for c, v in zip(classes, values)},
        "mean": float(np.mean(values)),
        "min": float(np.min(values)),
        "max": float(np.max(values)),
    }


def _latent_metrics(maps: dict, y: np.ndarray, train_y: np.ndarray, names: list[str], k: int) -> dict:
    out = {}
    for key, m in maps.items():
        f, xy = m["features"], m["coordinates"]
        orig, tsne = cl.scale_free_radii(f, y), cl.scale_free_radii(xy, y)
        out[key] = {
            "label": lat.FEATURE_LABELS[key],
            "dim": int(f.shape[1]),
            "tsne_radius": _per_class(tsne["radius"], tsne["classes"], names),
            "tsne_scale_free_radius": _per_class(tsne["scale_free_radius"], tsne["classes"], names),
            "original_radius": _per_class(orig["radius"], orig["classes"], names),
            "scale_free_radius": _per_class(orig["scale_free_radius"], orig["classes"], names),
            "centroid_distance": orig["centroid_distance"],
            "silhouette": cl.silhouette(f, y),
            "trustworthiness": cl.trustworthiness(f, xy, n_neighbors=k),
            "knn_accuracy": cl.knn_accuracy(m["train_features"], train_y, f, y, k=k),
            "linear_probe_accuracy": cl.linear_probe_accuracy(m["train_features"], train_y, f, y),
        }
    return out


def _ink_mass(maps: np.ndarray, ink: np.ndarray) -> float:
    """Mean over images of the share of a (B, G, G) map's mass on ink patches (nan patches ignored)."""
    m = np.nan_to_num(maps, nan=0.0)
    total = m.reshape(len(m), -1).sum(1)
    on_ink = (m * ink).reshape(len(m), -1).sum(1)
    ok = total > 0
    return float(np.mean(on_ink[ok] / total[ok])) if ok.any() else float("nan")


def _pool_to_patches(pixel_map: np.ndarray, patch_size: int) -> np.ndarray:
    b, h, w = pixel_map.shape
    return pixel_map.reshape(b, h // patch_size, patch_size, w // patch_size, patch_size).sum((2, 4))  # (B, G, G)


def _attention_analysis(dae, mae, x: torch.Tensor, mask_noise: torch.Tensor, mask_ratio: float, ink_threshold: float) -> tuple[dict, dict]:
    p, grid = mae.config.patch_size, mae.config.image_size // mae.config.patch_size
    attn, ids_keep, _ = mae_attentions(mae, x)  # masking off, spatial order
    cls_maps = att.cls_attention_maps(attn, ids_keep, grid)  # (layers, B, heads, G, G)
    rollout = att.rollout_cls_map(attn, ids_keep, grid)  # (B, G, G)
    study = att.study_attention_heatmap(attn, ids_keep, grid, x, p)  # (B, H, W)
    attn_m, ids_keep_m, mask = mae_attentions(mae, x, mask_ratio=mask_ratio, noise=mask_noise)
    cls_maps_m = att.cls_attention_maps(attn_m, ids_keep_m, grid)
    rollout_m = att.rollout_cls_map(attn_m, ids_keep_m, grid)
    dae_sal = sal.dae_saliency(dae, x).numpy()  # (B, H, W)
    mae_sal = sal.mae_saliency(mae, x).numpy()
    mae_sal_m = sal.mae_saliency(mae, x, mask_ratio=mask_ratio, noise=mask_noise).numpy()
    pixel_mask = np.asarray(att.upsample_grid(mask.reshape(-1, grid, grid).numpy(), p))  # (B, H, W), 1 = masked

    ink = _pool_to_patches(x.mean(1).numpy(), p) / (p * p) > ink_threshold  # (B, G, G)
    visible = mask.reshape(-1, grid, grid).numpy() == 0
    metrics = {
        "n_images": int(len(x)),
        "ink_threshold": ink_threshold,
        "ink_area": float(ink.mean()),
        "ink_area_visible": float((ink & visible).sum() / visible.sum()),
        "rollout": {
            "ink_mass": _ink_mass(rollout, ink),
            "ink_mass_masked": _ink_mass(rollout_m, ink),
            "max_patch_weight": float(np.nanmax(rollout.reshape(len(x), -1), axis=1).mean()),
        },
        "cls_attention": {
            "ink_mass_per_layer": [_ink_mass(cls_maps[l].mean(1), ink) for l in range(len(cls_maps))],
        },
        "study_heatmap": {"ink_mass": _ink_mass(_pool_to_patches(study, p), ink)},
        "saliency": {
            "dae": {"ink_mass": _ink_mass(_pool_to_patches(dae_sal, p), ink)},
            "mae": {
                "ink_mass": _ink_mass(_pool_to_patches(mae_sal, p), ink),
                "ink_mass_masked": _ink_mass(_pool_to_patches(mae_sal_m, p), ink),
                "max_in_masked_patches": float((mae_sal_m * pixel_mask).max()),
            },
        },
    }
    arrays = {
        "cls_maps": cls_maps, "cls_maps_masked": cls_maps_m, "rollout": rollout, "rollout_masked": rollout_m,
        "study_heatmap": study, "dae_saliency": dae_sal, "mae_saliency": mae_sal, "mae_saliency_masked": mae_sal_m,
        "pixel_mask": pixel_mask,
    }
    return metrics, arrays


def _weights_analysis(dae, mae, seed: int, eps_abs: float, eps_rel: float) -> tuple[dict, dict]:
    dae_init, mae_init = init_models(dae, mae, seed)
    metrics = {"eps_abs": eps_abs, "eps_rel": eps_rel, "init_seed": seed}
    hists = {}
    for name, trained, init in (("dae", dae, dae_init), ("mae", mae, mae_init)):
        entry = {}
        for state, model in (("trained", trained), ("init", init)):
            t = wts.near_zero_table(model, eps_abs, eps_rel)
            entry[state] = {
                "near_zero_fraction": {"absolute": t["overall"]["absolute"], "relative": t["overall"]["relative"]},
                "n_weights": t["overall"]["n"],
                "layers": {k: {"near_zero_fraction": {"absolute": v["absolute"], "relative": v["relative"]},
                               "std": v["std"], "n": v["n"]} for k, v in t["layers"].items()},
            }
        metrics[name] = entry
        pt, pi = wts.layer_parameters(trained), wts.layer_parameters(init)
        ranges = {k: (min(pt[k].min(), pi[k].min()), max(pt[k].max(), pi[k].max())) for k in pt}
        hists[name] = {"trained": wts.weight_histograms(trained, value_range=ranges),
                       "init": wts.weight_histograms(init, value_range=ranges)}
    return metrics, hists


def _data_range_check(res: rec.ReconstructionResult, x: torch.Tensor) -> dict:
    """The MAE's whole-image metrics if its images were on [-1, 1] (the study's MAE range) under either data range."""
    a, b = res.shown * 2 - 1, x * 2 - 1
    return {
        "psnr_minus1_1_data_range_2": float(np.mean(compute_psnr(a, b, data_range=2.0))),
        "psnr_minus1_1_data_range_1": float(np.mean(compute_psnr(a, b, data_range=1.0))),
        "ssim_minus1_1_data_range_2": float(np.mean(compute_ssim(a, b, data_range=2.0))),
        "psnr_0_1_data_range_1": float(np.mean(res.metrics["psnr"])),
        "ssim_0_1_data_range_1": float(np.mean(res.metrics["ssim"])),
    }


def run_analysis(
    dae: DAEModel,
    mae: ViTMAEForPreTraining,
    data: dict,
    settings: ReportSettings | None = None,
    cache: AnalysisCache | None = None,
    progress: bool = True,
    on_stage=None,
) -> dict:
    """
    Every analysis of the report, as numbers and arrays.

    Args:
        dae, mae: the two models (eval mode is set and restored by each analysis).
        data: `{"x": (N, C, H, W), "y": (N,), "train_x", "train_y", "class_names"}` as `load_report_data` returns.
        settings: `ReportSettings`; `settings.n` is ignored here (the data decide).
        cache: where latents and t-SNE maps are cached (`None`: no cache).
        progress: show progress bars.
        on_stage: optional callable `(stage_name, index, n_stages)`, called as each stage starts (the app shows it).

    Returns:
        `{"metrics": JSON-ready dict (reconstruction, latents, attention, weights, verdicts, settings, timings_s),
        "arrays": everything the figures need, "reconstructions": {(model, corruption): ReconstructionResult},
        "latent_maps": compute_latent_maps(...)}`.
    """
    settings = settings or ReportSettings()
    x, y = data["x"], data["y"]
    mask_ratio = mae.config.mask_ratio if settings.mask_ratio is None else settings.mask_ratio
    noise_factor = dae.config.noise_factor if settings.noise_factor is None else settings.noise_factor
    timings: dict[str, float] = {}
    metrics: dict = {}
    stages = ["reconstruction", "latents_and_tsne", "clustering", "attention_saliency", "weights", "verdicts"]
    bar = tqdm(stages, desc="analysis", disable=not progress)

    def stage(name):
        bar.set_postfix_str(name)
        if on_stage is not None:
            on_stage(name, stages.index(name), len(stages))
        return time.perf_counter()

    t = stage("reconstruction")
    results = rec.evaluate_reconstructions(dae, mae, x, mask_ratio, noise_factor, seed=settings.seed)
    table = rec.cross_table(results)
    metrics["reconstruction"] = {
        "mask_ratio": mask_ratio, "noise_factor": noise_factor, "data_range": 1.0,
        "ssim_settings": rec.SSIM_DESCRIPTION, **table,
        "data_range_check": _data_range_check(results["mae", "masking"], x),
    }
    timings["reconstruction"] = time.perf_counter() - t
    bar.update(1)

    t = stage("latents_and_tsne")
    maps = compute_latent_maps(dae, mae, x, data["train_x"], settings.seed, settings.study_mask_ratio, cache, progress)
    timings["latents_and_tsne"] = time.perf_counter() - t
    bar.update(1)

    t = stage("clustering")
    with threadpool_limits(limits=1, user_api="blas"):  # small problems: extra BLAS threads only add contention
        metrics["latents"] = _latent_metrics(maps, y.numpy(), data["train_y"].numpy(), data["class_names"], settings.knn_k)
    timings["clustering"] = time.perf_counter() - t
    bar.update(1)

    t = stage("attention_saliency")
    k = min(settings.n_attention, len(x))
    mask_noise = rec.corrupt_both_ways(x, mae.config.patch_size, mask_ratio, noise_factor, settings.seed)["mask_noise"]
    metrics["attention"], attn_arrays = _attention_analysis(
        dae, mae, x[:k], mask_noise[:k], mask_ratio, settings.ink_threshold
    )
    timings["attention_saliency"] = time.perf_counter() - t
    bar.update(1)

    t = stage("weights")
    metrics["weights"], hists = _weights_analysis(dae, mae, settings.init_seed, settings.eps_abs, settings.eps_rel)
    timings["weights"] = time.perf_counter() - t
    bar.update(1)

    t = stage("verdicts")
    metrics["verdicts"] = ver.compute_verdicts(metrics["latents"], metrics["weights"], table)
    timings["verdicts"] = time.perf_counter() - t
    bar.update(1)
    bar.close()

    metrics["settings"] = asdict(settings) | {"mask_ratio": mask_ratio, "noise_factor": noise_factor,
                                              "n": int(len(x)), "n_train": int(len(data["train_x"])),
                                              "tsne": dict(cl.TSNE_SETTINGS, library="openTSNE")}
    metrics["models"] = {"dae_fingerprint": model_fingerprint(dae), "mae_fingerprint": model_fingerprint(mae)}
    metrics["timings_s"] = timings
    if cache is not None:
        metrics["cache"] = {"dir": str(cache.dir) if cache.dir else None, "hits": cache.hits, "misses": cache.misses}
    return {
        "metrics": metrics,
        "arrays": {"attention": attn_arrays, "weights": hists, "x": x, "y": y.numpy(), "class_names": data["class_names"]},
        "reconstructions": results,
        "latent_maps": maps,
    }


# ----------------------------------------------------------------------------------------------------------------
# Writing


def _jsonable(obj):
    """Floats that JSON cannot hold (inf, nan) become the strings "inf", "-inf", "nan"; numpy → Python."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else ("nan" if math.isnan(f) else ("inf" if f > 0 else "-inf"))
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


class _Doc:
    """Blocks (headings, paragraphs, tables, images) rendered to Markdown and to self-contained HTML."""

    def __init__(self):
        self.blocks: list[tuple] = []

    def h(self, level: int, text: str):
        self.blocks.append(("h", level, text))

    def p(self, text: str):
        self.blocks.append(("p", text))

    def table(self, header: list[str], rows: list[list]):
        self.blocks.append(("table", header, [[str(c) for c in r] for r in rows]))

    def img(self, filename: str, caption: str):
        self.blocks.append(("img", filename, caption))

    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "table":
                out.append("\n".join(["| " + " | ".join(b[1]) + " |", "|" + " --- |" * len(b[1])]
                                     + ["| " + " | ".join(r) + " |" for r in b[2]]))
            else:
                out.append(f"![{b[2]}]({b[1]})\n\n*{b[2]}*")
        return "\n\n".join(out) + "\n"

    @staticmethod
    def _inline(text: str) -> str:
        t = html.escape(text)
        t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
        return re.sub(r"`(.+?)`", r"<code>\1</code>", t)

    def html(self, folder: Path) -> str:
        body = []
        for b in self.blocks:
            if b[0] == "h":
                body.append(f"<h{b[1]}>{self._inline(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                body.append(f"<p>{self._inline(b[1])}</p>")
            elif b[0] == "table":
                head = "".join(f"<th>{self._inline(c)}</th>" for c in b[1])
                rows = "".join("<tr>" + "".join(f"<td>{self._inline(c)}</td>" for c in r) + "</tr>" for r in b[2])
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            else:
                data = base64.b64encode((folder / b[1]).read_bytes()).decode()
                body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(b[2])}">'
                            f"<figcaption>{self._inline(b[2])}</figcaption></figure>")
        style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}"
                 "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 8px}"
                 "th{background:#f3f3f3}img{max-width:100%}figcaption{font-size:0.85em;color:#555}"
                 "code{background:#f5f5f5;padding:0 3px}")
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>MAE vs DAE report</title>"
                f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def _ms(summary: dict, digits: int = 2) -> str:
    m, s = summary["mean"], summary["std"]
    if not math.isfinite(m):
        return str(m)
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def _fmt(v, digits: int = 3) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (float, np.floating)) and math.isfinite(v) else str(v)


def _save(fig, path: Path):
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=80)
    plt.close(fig)


def _figures(analysis: dict, out: Path, n_show: int) -> None:
    r = analysis["reconstructions"]
    x = analysis["arrays"]["x"]
    mr, dn, dm, mn = r["mae", "masking"], r["dae", "noise"], r["dae", "masking"], r["mae", "noise"]
    rows = {
        "original": x, "masked input": mr.corrupted, "MAE recon.": mr.reconstruction, "MAE pasted": mr.shown,
        "DAE on masked": dm.reconstruction, "noisy input": dn.corrupted, "DAE recon.": dn.reconstruction,
        "MAE on noisy": mn.reconstruction,
    }
    titles = [f"{a:.1f}/{b:.1f}" for a, b in zip(mr.metrics["psnr"], dn.metrics["psnr"])]
    fig, _ = plotting.plot_image_rows(rows, n_show=n_show, titles=titles)
    _save(fig, out / "reconstructions.png")
    series = {"MAE (masking, pasted)": mr, "DAE (noise)": dn, "DAE (masking)": dm, "MAE (noise)": mn}
    for metric, label in (("psnr", "PSNR (dB), [0, 1] range"), ("ssim", "SSIM")):
        values = {k: v.metrics[metric] for k, v in series.items()}
        if metric == "psnr":
            values |= {"masked input": mr.metrics["psnr_input"], "noisy input": dn.metrics["psnr_input"]}
        fig, _ = plotting.plot_metric_histograms(values, label)
        _save(fig, out / f"{metric}_hist.png")

    import matplotlib.pyplot as plt

    maps, y = analysis["latent_maps"], analysis["arrays"]["y"]
    lm = analysis["metrics"]["latents"]
    fig, axes = plt.subplots(1, len(maps), figsize=(3.3 * len(maps), 3.5))
    for ax, (key, m) in zip(np.atleast_1d(axes), maps.items()):
        plotting.plot_tsne(m["coordinates"], y, title=f"{lat.FEATURE_LABELS[key]}\nsilhouette {lm[key]['silhouette']:.2f}", ax=ax)
        ax.title.set_fontsize(7)
    fig.tight_layout()
    _save(fig, out / "tsne.png")

    names = analysis["arrays"]["class_names"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.2))
    plotting.plot_radius_bars({k: list(lm[k]["tsne_radius"]["per_class"].values()) for k in ("dae", "mae_masked_flat", "mae_mean")},
                              names, "t-SNE radius (study's measure)", ax=axes[0])
    plotting.plot_radius_bars({k: list(lm[k]["scale_free_radius"]["per_class"].values()) for k in lat.FEATURE_SETS},
                              names, "scale-free radius, latent space", ax=axes[1])
    fig.tight_layout()
    _save(fig, out / "radii.png")

    a = analysis["arrays"]["attention"]
    fig, _ = plotting.plot_cls_attention(a["cls_maps"][:, 0], image=x[0], rollout=a["rollout"][0])
    _save(fig, out / "attention_layers.png")
    fig, _ = plotting.plot_cls_attention(a["cls_maps_masked"][:, 0], image=mr.corrupted[0], rollout=a["rollout_masked"][0])
    _save(fig, out / "attention_layers_masked.png")
    p = int(x.shape[-1] // a["rollout"].shape[-1])
    heats = {
        "rollout": att.upsample_grid(a["rollout"], p),
        "rollout, masked": att.upsample_grid(a["rollout_masked"], p),
        "study: attn × pixels": a["study_heatmap"],
        "DAE saliency": a["dae_saliency"],
        "MAE saliency": a["mae_saliency"],
        "MAE saliency, masked": a["mae_saliency_masked"],
    }
    masks = {"rollout, masked": a["pixel_mask"], "MAE saliency, masked": a["pixel_mask"]}
    fig, _ = plotting.plot_overlay_row(x, heats, masks, n_show=min(n_show, 6))
    _save(fig, out / "attention_saliency.png")

    for name in ("dae", "mae"):
        h = analysis["arrays"]["weights"][name]
        fig, _ = plotting.plot_weight_histograms(h["trained"], h["init"], title=f"{name.upper()} weights per layer: trained vs init")
        _save(fig, out / f"weights_{name}.png")


def _write_per_image(analysis: dict, path: Path) -> None:
    y = analysis["arrays"]["y"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "label", "model", "corruption", "psnr", "ssim", "psnr_input", "psnr_masked"])
        for (model, corruption), res in analysis["reconstructions"].items():
            m = res.metrics
            for i in range(len(y)):
                w.writerow([i, int(y[i]), model, corruption] + [
                    f"{m[k][i]:.6g}" if k in m else "" for k in ("psnr", "ssim", "psnr_input", "psnr_masked")])


def _document(metrics: dict, meta: dict) -> _Doc:
    d = _Doc()
    s, rc, lt, at, wt, vd = (metrics[k] for k in ("settings", "reconstruction", "latents", "attention", "weights", "verdicts"))
    d.h(1, "MAE vs DAE: reconstruction, latent space, attention and weights")
    d.p(f"DAE: `{meta['dae']}` (fingerprint `{metrics['models']['dae_fingerprint']}`); MAE: `{meta['mae']}` "
        f"(`{metrics['models']['mae_fingerprint']}`). Data: `{meta['dataset']}`, split `{meta['split']}`, the first "
        f"{s['n']} images; classifiers fit on {s['n_train']} train images. Seed {s['seed']}. Every number is in "
        "`metrics.json`; per-image values in `per_image.csv`.")

    d.h(2, "Verdicts")
    d.p("Each claim of the study, checked under every measure that bears on it. A measure holds when the comparison "
        "the claim predicts is true in the numbers below.")
    for key, v in vd.items():
        d.h(3, f"{key}: {v['claim']}")
        rows = []
        for r in v["measures"]:
            ctx = r.get("features") or r.get("corruption") or ""
            rows.append([r["measure"], ctx, _fmt(r["dae"], 4), _fmt(r["mae"], 4), r["claim"], "holds" if r["holds"] else "does not hold"])
        d.table(["measure", "features / corruption", "DAE", "MAE", "claim", "verdict"], rows)
        d.p(f"Holds under {len(v['holds_under'])} of {len(v['measures'])} measures"
            + (f": {', '.join(v['holds_under'])}." if v["holds_under"] else "."))

    d.h(2, "1. Reconstruction quality")
    d.p(f"Both models on the same {s['n']} images, on [0, 1] with data range 1. Masking: {rc['mask_ratio']:.0%} of "
        f"patches (one mask shared by both models); noise: clamp(x + {rc['noise_factor']} · N(0, 1), 0, 1). The MAE's "
        "whole-image metrics use the pasted image (visible patches + reconstructed masked ones); `psnr_masked` counts "
        "the masked patches only; `psnr_input` is the corrupted input's own PSNR. The MAE on noisy input runs with "
        f"masking off. SSIM: {rc['ssim_settings']}.")
    d.img("reconstructions.png", "Rows: original, masked input, MAE reconstruction, MAE with visible patches pasted, "
          "DAE on the masked input, noisy input, DAE reconstruction, MAE on the noisy input. Column titles: PSNR (dB) of "
          "the MAE (pasted, masking) / the DAE (noise), each under its own corruption.")
    rows = []
    for model in ("dae", "mae"):
        for corruption in rec.CORRUPTIONS:
            c = rc[model][corruption]
            own = (model, corruption) in (("dae", "noise"), ("mae", "masking"))
            rows.append([model.upper(), corruption + (" (own)" if own else " (other's)"), _ms(c["psnr"]), _ms(c["ssim"], 3),
                         _ms(c["psnr_masked"]) if "psnr_masked" in c else "–", _ms(c["psnr_input"])])
    d.table(["model", "corruption", "psnr (dB)", "ssim", "psnr_masked (dB)", "psnr_input (dB)"], rows)
    d.img("psnr_hist.png", "Per-image PSNR, with the corrupted inputs' own PSNR.")
    d.img("ssim_hist.png", "Per-image SSIM.")
    dr = rc["data_range_check"]
    d.p("Data range: the study's MAE images were in [-1, 1] and its DAE's in [0, 1]. The same MAE outputs mapped to "
        f"[-1, 1] give PSNR {dr['psnr_minus1_1_data_range_2']:.2f} dB with data range 2 (identical to "
        f"{dr['psnr_0_1_data_range_1']:.2f} dB on [0, 1]) but {dr['psnr_minus1_1_data_range_1']:.2f} dB if scored with "
        f"data range 1, and SSIM {dr['ssim_minus1_1_data_range_2']:.3f} vs {dr['ssim_0_1_data_range_1']:.3f} "
        "(SSIM's constants are not shift-invariant). Comparisons across models are only fair on one range.")

    d.h(2, "2. Latent space")
    d.p("Features: raw pixels (baseline); the DAE's flattened bottleneck; the MAE's CLS token and mean-pooled patch "
        "tokens with masking off, in spatial order; and — only to reproduce the study's table — the MAE's output "
        f"under {s['study_mask_ratio']:.0%} random masking with its shuffled tokens flattened, so feature j is a "
        "different patch in every image. t-SNE: openTSNE, PCA initialisation, perplexity "
        f"{s['tsne']['perplexity']}, seed {s['seed']}.")
    d.img("tsne.png", "t-SNE maps coloured by class.")
    st = STUDY_NUMBERS
    d.p(f"The study's table: per-class radius in t-SNE space (it reported MAE {st['tsne_radius']['mae'][0]}–"
        f"{st['tsne_radius']['mae'][1]} vs DAE {st['tsne_radius']['dae'][0]}–{st['tsne_radius']['dae'][1]}; in its "
        f"original latent space the order reversed: MAE {st['original_radius']['mae'][0]:g}–"
        f"{st['original_radius']['mae'][1]:g} vs DAE {st['original_radius']['dae'][0]}–{st['original_radius']['dae'][1]}). "
        "Ours, same measure:")
    names = list(lt["dae"]["tsne_radius"]["per_class"])
    keys = ("dae", "mae_masked_flat", "mae_cls", "mae_mean", "raw_pixels")
    d.table(["class"] + [f"`{k}` t-SNE radius" for k in keys],
            [[c] + [_fmt(lt[k]["tsne_radius"]["per_class"][c], 2) for k in keys] for c in names])
    d.p("A radius has the units of its space: t-SNE radii depend on the map's layout, original-space radii on each "
        "model's activation scale. The scale-free radius divides by the mean distance between class centroids of the "
        "same space; silhouette, kNN and linear-probe accuracy are scale-free too.")
    d.table(["features", "dim", "tsne_radius", "original_radius", "scale_free_radius", "tsne_scale_free_radius",
             "silhouette", "trustworthiness", "knn_accuracy", "linear_probe_accuracy"],
            [[f"`{k}`: {v['label']}", v["dim"], _fmt(v["tsne_radius"]["mean"], 2), _fmt(v["original_radius"]["mean"], 2),
              _fmt(v["scale_free_radius"]["mean"]), _fmt(v["tsne_scale_free_radius"]["mean"]), _fmt(v["silhouette"]),
              _fmt(v["trustworthiness"]), _fmt(v["knn_accuracy"]), _fmt(v["linear_probe_accuracy"])] for k, v in lt.items()])
    d.table(["class"] + [f"`{k}` original / scale-free" for k in keys],
            [[c] + [f"{lt[k]['original_radius']['per_class'][c]:.2f} / {lt[k]['scale_free_radius']['per_class'][c]:.3f}"
                    for k in keys] for c in names])
    d.img("radii.png", "Per-class radii: the study's t-SNE measure (left) and the scale-free latent-space radius (right).")

    d.h(2, "3. Attention and saliency")
    d.p("MAE: attention from the CLS token per layer and head, and attention rollout (Abnar & Zuidema 2020: heads "
        "averaged, identity added for the residual path, rows renormalised, layers multiplied), on the patch grid, "
        "with masking off and under the shared mask (masked patches grey). The study's \"attention heatmap\" "
        "multiplied attention by the pixels, so it lights up wherever there is ink. Saliency = |∂‖latent‖/∂pixel| "
        "normalised to [0, 1] per image, for the DAE's bottleneck and the MAE encoder's tokens.")
    d.img("attention_layers.png", "CLS attention per layer (rows) and head (columns), masking off; rollout at the end.")
    d.img("attention_layers_masked.png", "The same under the mask (masked patches grey).")
    d.img("attention_saliency.png", "Overlays: rollout, rollout under the mask, the study's attention × pixels, DAE "
          "saliency, MAE saliency, MAE saliency under the mask.")
    d.p(f"Share of each map's mass on patches with ink (mean pixel > {at['ink_threshold']}), over {at['n_images']} "
        f"images; ink covers {at['ink_area']:.3f} of the patches ({at['ink_area_visible']:.3f} of the visible ones "
        "under the mask), the share a map blind to content would give.")
    rows = [["rollout (masking off)", _fmt(at["rollout"]["ink_mass"])],
            ["rollout (masked; visible patches)", _fmt(at["rollout"]["ink_mass_masked"])]]
    rows += [[f"CLS attention, layer {i}", _fmt(v)] for i, v in enumerate(at["cls_attention"]["ink_mass_per_layer"])]
    rows += [["study: attention × pixels", _fmt(at["study_heatmap"]["ink_mass"])],
             ["DAE saliency", _fmt(at["saliency"]["dae"]["ink_mass"])],
             ["MAE saliency (masking off)", _fmt(at["saliency"]["mae"]["ink_mass"])],
             ["MAE saliency (masked)", _fmt(at["saliency"]["mae"]["ink_mass_masked"])]]
    d.table(["map", "ink mass"], rows)
    d.p(f"MAE saliency inside masked patches (must be 0: the encoder never sees them): "
        f"max {at['saliency']['mae']['max_in_masked_patches']:.3g}.")

    d.h(2, "4. Weights")
    d.p(f"Near-zero: |w| < {wt['eps_abs']} (absolute) and |w| < {wt['eps_rel']} × the layer's std (relative), over "
        "conv/linear weight tensors (biases, norms, tokens and the fixed position tables excluded). \"Init\" is the "
        f"same architecture re-initialised with seed {wt['init_seed']} (the DAE: PyTorch's default conv init; the "
        "MAE: `build_mae`'s original-MAE init), so a difference is judged against where training started.")
    rows = []
    for name in ("dae", "mae"):
        for state in ("init", "trained"):
            e = wt[name][state]
            rows.append([name.upper(), state, e["n_weights"], _fmt(e["near_zero_fraction"]["absolute"], 4),
                         _fmt(e["near_zero_fraction"]["relative"], 4)])
    d.table(["model", "state", "weights", "near_zero_fraction (absolute)", "near_zero_fraction (relative)"], rows)
    rows = []
    for name in ("dae", "mae"):
        for layer, e in wt[name]["trained"]["layers"].items():
            i = wt[name]["init"]["layers"][layer]
            rows.append([name.upper(), f"`{layer}`", e["n"], f"{_fmt(i['near_zero_fraction']['absolute'], 4)} → "
                         f"{_fmt(e['near_zero_fraction']['absolute'], 4)}", f"{_fmt(i['near_zero_fraction']['relative'], 4)} → "
                         f"{_fmt(e['near_zero_fraction']['relative'], 4)}", f"{i['std']:.4f} → {e['std']:.4f}"])
    d.table(["model", "layer", "weights", "absolute (init → trained)", "relative (init → trained)", "std (init → trained)"], rows)
    d.img("weights_dae.png", "DAE weight histograms per layer, trained (filled) vs init (outline).")
    d.img("weights_mae.png", "MAE weight histograms per layer, trained (filled) vs init (outline).")

    d.h(2, "Timings")
    d.table(["stage", "seconds"], [[k, f"{v:.2f}"] for k, v in metrics["timings_s"].items()])
    return d


def write_report(analysis: dict, out_dir: str | os.PathLike, meta: dict, n_show: int = 8) -> dict[str, Path]:
    """
    Write the report files into `out_dir` (created if missing).

    Args:
        analysis: what `run_analysis` returned.
        meta: `{"dae", "mae", "dataset", "split"}` as given on the command line (shown in the report).

    Returns:
        `{filename: path}` for every file of `REPORT_FILES`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    _figures(analysis, out, n_show)
    analysis["metrics"]["timings_s"]["figures"] = time.perf_counter() - t
    t = time.perf_counter()
    _write_per_image(analysis, out / "per_image.csv")
    metrics = analysis["metrics"] | {"meta": meta}
    doc = _document(metrics, meta)
    (out / "report.md").write_text(doc.markdown())
    (out / "report.html").write_text(doc.html(out))
    metrics["timings_s"]["write"] = time.perf_counter() - t
    (out / "metrics.json").write_text(json.dumps(_jsonable(metrics), indent=1) + "\n")
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
) -> dict:
    """
    `mae-hf report`: load the models and data, run the analysis, write the files.

    Args:
        dae, mae: local folders or Hub ids. dataset: any `load_image_dataset` source. split: the analysed split.
        out: output folder. settings: `ReportSettings` (n, seed, ...). cache_dir: `None` disables the cache.

    Returns:
        `run_analysis`'s result, with `"files"` (the written paths) added.
    """
    settings = settings or ReportSettings()
    t = time.perf_counter()
    dae_model, mae_model = load_dae(dae), load_mae(mae)
    cache = AnalysisCache(cache_dir)
    data = load_report_data(dataset, split, settings.n, settings.n_train, dae_model, mae_model, cache)
    load_s = time.perf_counter() - t
    analysis = run_analysis(dae_model, mae_model, data, settings, cache, progress)
    analysis["metrics"]["timings_s"] = {"load": load_s, **analysis["metrics"]["timings_s"]}
    meta = {"dae": str(dae), "mae": str(mae), "dataset": dataset, "split": split}
    analysis["files"] = write_report(analysis, out, meta, settings.n_show)
    logger.info("Report written to %s (%.1f s)", out, sum(analysis["metrics"]["timings_s"].values()))
    return analysis
