"""Every analysis of the report as numbers and arrays: `run_analysis` → `AnalysisResult`. Pure apart from the
cache: no figures, no files (the writer makes those); the app runs the same function and caches its result.
"""

import copy
import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from ..analysis import attention as att
from ..analysis import clustering as cl
from ..analysis import latents as lat
from ..analysis import saliency as sal
from ..analysis import verdicts as ver
from ..analysis import weights as wts
from ..analysis.reconstruction import SSIM_DESCRIPTION, cross_table, evaluate_reconstructions
from ..evaluation import draw_noise
from ..labels import FEATURE_LABELS, FEATURE_SETS
from ..mae import MAE_PRESETS, build_mae, mae_attentions
from ..metrics import compute_psnr, compute_ssim
from ..modeling_dae import DAEModel
from ..scorecard import classifier_scores, scorecard
from .cache import AnalysisCache, array_fingerprint, flatten, model_fingerprint, unflatten

logger = logging.getLogger(__name__)

__all__ = [
    "STAGES",
    "ReportSettings",
    "AnalysisResult",
    "init_models",
    "compute_latent_maps",
    "latent_metrics",
    "attention_analysis",
    "weights_analysis",
    "run_analysis",
]

STAGES = ("reconstruction", "latents_and_tsne", "clustering", "attention_saliency", "weights", "scorecard", "verdicts")
# The mask ratios of the scorecard's sweep (the MAE against predicting black or the mean image).
SWEEP_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)


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
        scorecard: also compute `mae_hf.scorecard` (classifiers on every training set the data hold, the mask-ratio
            sweep against the black and mean-image baselines). Off by default: it costs more than the rest of the
            report (`mae-hf report --scorecard`; `make report` turns it on for docs/RESULTS.md). scorecard_n: test
            images the scorecard scores, the first `scorecard_n` of the split (default: the `n` analysed; e.g. 10000
            for MNIST's whole test set).
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
    scorecard: bool = False
    scorecard_n: int | None = None


@dataclass
class AnalysisResult:
    """
    What `run_analysis` computed: every number (`metrics`, JSON-ready, as `metrics.json` holds it) and the arrays
    the figures and the app need.

    Attributes:
        metrics: `reconstruction`, `latents`, `attention`, `weights`, `verdicts`, `settings`, `models`, `timings_s`.
        per_image: `{"mae_mask": {"psnr": (N,), "ssim", "psnr_input", "psnr_masked"}, ...}` for the four `PAIRS`.
        examples: the first images of each pair for figures: `{"original": (k, C, H, W), "mae_mask": {"corrupted",
            "reconstruction", "shown", ["pixel_mask"]}, ...}`.
        latent_maps: `compute_latent_maps`'s result.
        attention: the attention and saliency maps (`attention_analysis`).
        weights: `{"dae"|"mae": {"trained"|"init": {layer: {"counts", "edges"}}}}`.
        y: (N,) labels of the analysed images. class_names: their names.
    """

    metrics: dict
    per_image: dict
    examples: dict
    latent_maps: dict
    attention: dict
    weights: dict
    y: np.ndarray
    class_names: list

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The whole result as flat arrays (`AnalysisCache` stores these)."""
        return flatten({**asdict(self), "class_names": list(self.class_names)})

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "AnalysisResult":
        tree = unflatten(arrays)
        return cls(
            **{k: tree.get(k, {}) for k in ("metrics", "per_image", "examples", "latent_maps", "attention", "weights")},
            y=tree["y"],
            class_names=list(tree["class_names"]),
        )


def init_models(dae: DAEModel, mae, seed: int = 0):
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


def compute_latent_maps(
    dae,
    mae,
    x: torch.Tensor,
    train_x: torch.Tensor | None = None,
    seed: int = 0,
    study_mask_ratio: float = 0.75,
    cache: AnalysisCache | None = None,
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
        return cache.arrays(
            f"latents-{tag}",
            [*fp, array_fingerprint(images)],
            lambda: lat.extract_features(dae, mae, images, study_mask_ratio, seed),
        )

    feats = features_of(x, "eval")
    train_feats = features_of(train_x, "train") if train_x is not None else None
    out = {}
    for key in FEATURE_SETS:
        f = feats[key]
        with threadpool_limits(limits=1, user_api="blas"):
            coords = cache.arrays(
                "tsne",
                [array_fingerprint(f), seed, cl.TSNE_SETTINGS],
                lambda f=f: {"coordinates": np.asarray(cl.fit_tsne(f, seed=seed))},
            )["coordinates"]
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


def latent_metrics(maps: dict, y: np.ndarray, train_y: np.ndarray, names: list[str], k: int) -> dict:
    out = {}
    for key, m in maps.items():
        f, xy = m["features"], m["coordinates"]
        orig, tsne = cl.scale_free_radii(f, y), cl.scale_free_radii(xy, y)
        out[key] = {
            "label": FEATURE_LABELS[key],
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


def attention_analysis(
    dae, mae, x: torch.Tensor, mask_noise: torch.Tensor, mask_ratio: float, ink_threshold: float
) -> tuple[dict, dict]:
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
        "cls_maps": cls_maps,
        "cls_maps_masked": cls_maps_m,
        "rollout": rollout,
        "rollout_masked": rollout_m,
        "study_heatmap": study,
        "dae_saliency": dae_sal,
        "mae_saliency": mae_sal,
        "mae_saliency_masked": mae_sal_m,
        "pixel_mask": pixel_mask,
    }
    return metrics, arrays


def weights_analysis(dae, mae, seed: int, eps_abs: float, eps_rel: float) -> tuple[dict, dict]:
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
                "layers": {
                    k: {
                        "near_zero_fraction": {"absolute": v["absolute"], "relative": v["relative"]},
                        "std": v["std"],
                        "n": v["n"],
                    }
                    for k, v in t["layers"].items()
                },
            }
        metrics[name] = entry
        pt, pi = wts.layer_parameters(trained), wts.layer_parameters(init)
        ranges = {k: (min(pt[k].min(), pi[k].min()), max(pt[k].max(), pi[k].max())) for k in pt}
        hists[name] = {
            "trained": wts.weight_histograms(trained, value_range=ranges),
            "init": wts.weight_histograms(init, value_range=ranges),
        }
    return metrics, hists


def _data_range_check(shown: torch.Tensor, x: torch.Tensor, psnr: np.ndarray, ssim: np.ndarray) -> dict:
    """The MAE's whole-image metrics if its images were on [-1, 1] (the study's MAE range) under either data range."""
    a, b = shown * 2 - 1, x * 2 - 1
    return {
        "psnr_minus1_1_data_range_2": float(np.mean(compute_psnr(a, b, data_range=2.0))),
        "psnr_minus1_1_data_range_1": float(np.mean(compute_psnr(a, b, data_range=1.0))),
        "ssim_minus1_1_data_range_2": float(np.mean(compute_ssim(a, b, data_range=2.0))),
        "psnr_0_1_data_range_1": float(np.mean(psnr)),
        "ssim_0_1_data_range_1": float(np.mean(ssim)),
    }


def _examples(x: torch.Tensor, recs: dict, n_show: int) -> dict:
    out = {"original": x[:n_show]}
    for (model, corruption), (_, rec) in recs.items():
        out[f"{model}_{corruption}"] = {
            k: v[:n_show]
            for k, v in (
                ("corrupted", rec.corrupted),
                ("reconstruction", rec.reconstruction),
                ("shown", rec.shown),
                ("pixel_mask", rec.pixel_mask),
            )
            if v is not None
        }
    return out


def run_analysis(
    dae: DAEModel,
    mae,
    data: dict,
    settings: "ReportSettings | None" = None,
    cache: AnalysisCache | None = None,
    on_stage=None,
) -> AnalysisResult:
    """
    Every analysis of the report, as numbers and arrays.

    Args:
        dae, mae: the two models (eval mode is set and restored by each analysis).
        data: `{"x": (N, C, H, W), "y": (N,), "train_x", "train_y", "class_names"}` as `load_report_data` returns.
        settings: `ReportSettings`; `settings.n` is ignored here (the data decide).
        cache: where latents and t-SNE maps are cached (`None`: no cache).
        on_stage: optional callable `(stage_name, index, n_stages)`, called as each stage starts (progress bars,
            the app's status line).
    """
    settings = settings or ReportSettings()
    x, y = data["x"], data["y"]
    mask_ratio = mae.config.mask_ratio if settings.mask_ratio is None else settings.mask_ratio
    noise_factor = dae.config.noise_factor if settings.noise_factor is None else settings.noise_factor
    timings: dict[str, float] = {}
    metrics: dict = {}

    def stage(name):
        if on_stage is not None:
            on_stage(name, STAGES.index(name), len(STAGES))
        return time.perf_counter()

    t = stage("reconstruction")
    recs = evaluate_reconstructions(dae, mae, x, mask_ratio, noise_factor, seed=settings.seed)
    per_image = {f"{m}_{c}": values for (m, c), (values, _) in recs.items()}
    table = cross_table({pair: values for pair, (values, _) in recs.items()})
    own = recs["mae", "mask"]
    metrics["reconstruction"] = {
        "mask_ratio": mask_ratio,
        "noise_factor": noise_factor,
        "data_range": 1.0,
        "ssim_settings": SSIM_DESCRIPTION,
        **table,
        "data_range_check": _data_range_check(own[1].shown, x, own[0]["psnr"], own[0]["ssim"]),
    }
    timings["reconstruction"] = time.perf_counter() - t

    t = stage("latents_and_tsne")
    maps = compute_latent_maps(dae, mae, x, data["train_x"], settings.seed, settings.study_mask_ratio, cache)
    timings["latents_and_tsne"] = time.perf_counter() - t

    t = stage("clustering")
    with threadpool_limits(limits=1, user_api="blas"):  # small problems: extra BLAS threads only add contention
        metrics["latents"] = latent_metrics(
            maps, y.numpy(), data["train_y"].numpy(), data["class_names"], settings.knn_k
        )
    timings["clustering"] = time.perf_counter() - t

    t = stage("attention_saliency")
    k = min(settings.n_attention, len(x))
    mask_noise = draw_noise(mae, "mask", torch.arange(k), settings.seed)  # the masks the reconstruction used
    metrics["attention"], attention = attention_analysis(
        dae, mae, x[:k], mask_noise, mask_ratio, settings.ink_threshold
    )
    timings["attention_saliency"] = time.perf_counter() - t

    t = stage("weights")
    metrics["weights"], hists = weights_analysis(dae, mae, settings.init_seed, settings.eps_abs, settings.eps_rel)
    timings["weights"] = time.perf_counter() - t

    t = stage("scorecard")
    if settings.scorecard:
        trains = {"train": (data["train_x"], data["train_y"])}
        if "full_train_x" in data:
            trains["full_train"] = (data["full_train_x"], data["full_train_y"])
        mean_image = data["train_x"].mean(0, keepdim=True)
        test = (data["score_x"], data["score_y"]) if "score_x" in data else (x, y)
        metrics["scorecard"] = {
            "train_sets": {k: int(len(v[0])) for k, v in trains.items()},
            "n_test": int(len(test[0])),
            "mae": scorecard(mae, test, trains, mean_image, SWEEP_RATIOS, settings.seed),
            "dae": scorecard(dae, test, trains, mean_image, seed=settings.seed),
            "raw_pixels": {"classifiers": {k: classifier_scores(None, v, test) for k, v in trains.items()}},
        }
    timings["scorecard"] = time.perf_counter() - t

    t = stage("verdicts")
    metrics["verdicts"] = ver.compute_verdicts(metrics["latents"], metrics["weights"], table)
    timings["verdicts"] = time.perf_counter() - t

    metrics["settings"] = asdict(settings) | {
        "mask_ratio": mask_ratio,
        "noise_factor": noise_factor,
        "n": int(len(x)),
        "n_train": int(len(data["train_x"])),
        "tsne": dict(cl.TSNE_SETTINGS, library="openTSNE"),
    }
    metrics["models"] = {"dae_fingerprint": model_fingerprint(dae), "mae_fingerprint": model_fingerprint(mae)}
    metrics["timings_s"] = timings
    if cache is not None:
        metrics["cache"] = {"dir": str(cache.dir) if cache.dir else None, "hits": cache.hits, "misses": cache.misses}
    return AnalysisResult(
        metrics=metrics,
        per_image=per_image,
        examples=_examples(x, recs, settings.n_show),
        latent_maps=maps,
        attention=attention,
        weights=hists,
        y=y.numpy(),
        class_names=list(data["class_names"]),
    )
