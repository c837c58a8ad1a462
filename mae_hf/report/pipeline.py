"""Every analysis of the report as numbers and arrays: `run_analysis` → `AnalysisResult`. Pure apart from the
cache: no figures, no files (the writer makes those); the app runs the same function and caches its result.
"""

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
from ..analysis.reconstruction import SSIM_DESCRIPTION, cross_table, default_corruptions, evaluate_reconstructions
from ..evaluation import draw_noise, own_corruption
from ..mae import mae_attentions
from ..metrics import compute_psnr, compute_ssim
from ..registry import feature_labels, kind_of
from ..scorecard import classifier_scores, scorecard
from .cache import AnalysisCache, array_fingerprint, flatten, model_fingerprint, unflatten

logger = logging.getLogger(__name__)

__all__ = [
    "STAGES",
    "ReportSettings",
    "AnalysisResult",
    "init_models",
    "compute_latent_maps",
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


def init_models(models: dict, seed: int = 0) -> dict:
    """Each model as it was at initialisation under `seed`: its kind's `build_like` (the trained model's architecture,
    weights freshly initialised)."""
    return {name: kind_of(m).build_like(m, seed) for name, m in models.items()}


def compute_latent_maps(
    models: dict,
    x: torch.Tensor,
    train_x: torch.Tensor | None = None,
    seed: int = 0,
    study_mask_ratio: float = 0.75,
    cache: AnalysisCache | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """
    Every feature set of every model (`mae_hf.analysis.latents.extract_features`) for `x` (and `train_x`), and a 2-D
    t-SNE map of `x` per set; cached.

    Rebuild a map that can place new points with
    `mae_hf.analysis.tsne_from_coordinates(maps[key]["features"], maps[key]["coordinates"], seed=seed)`.

    Returns:
        `{key: {"features": (N, D), "coordinates": (N, 2), "train_features": (N_train, D) if train_x given}}`.
    """
    cache = cache or AnalysisCache(None)
    fp = [*(model_fingerprint(m) for m in models.values()), seed, study_mask_ratio]

    def features_of(images, tag):
        return cache.arrays(
            f"latents-{tag}",
            [*fp, array_fingerprint(images)],
            lambda: lat.extract_features(models, images, study_mask_ratio, seed),
        )

    feats = features_of(x, "eval")
    train_feats = features_of(train_x, "train") if train_x is not None else None
    out = {}
    for key, f in feats.items():
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


def attention_analysis(
    models: dict, name: str, x: torch.Tensor, mask_noise: torch.Tensor, mask_ratio: float, ink_threshold: float
) -> tuple[dict, dict]:
    """
    The attention of `models[name]` (a kind with attention maps) and every model's saliency, on the patch grid of
    that model: where the CLS attention, the rollout, the study's heat map and each saliency put their mass (on ink
    or not), masking off and under the masks `mask_noise` draws.
    """
    mae = models[name]
    p, grid = mae.config.patch_size, mae.config.image_size // mae.config.patch_size
    attn, ids_keep, _ = mae_attentions(mae, x)  # masking off, spatial order
    cls_maps = att.cls_attention_maps(attn, ids_keep, grid)  # (layers, B, heads, G, G)
    rollout = att.rollout_cls_map(attn, ids_keep, grid)  # (B, G, G)
    study = att.study_attention_heatmap(attn, ids_keep, grid, x, p)  # (B, H, W)
    attn_m, ids_keep_m, mask = mae_attentions(mae, x, mask_ratio=mask_ratio, noise=mask_noise)
    cls_maps_m = att.cls_attention_maps(attn_m, ids_keep_m, grid)
    rollout_m = att.rollout_cls_map(attn_m, ids_keep_m, grid)
    saliency = {m: sal.model_saliency(model, x).numpy() for m, model in models.items()}  # (B, H, W) each
    masked_saliency = sal.mae_saliency(mae, x, mask_ratio=mask_ratio, noise=mask_noise).numpy()
    pixel_mask = np.asarray(att.upsample_grid(mask.reshape(-1, grid, grid).numpy(), p))  # (B, H, W), 1 = masked

    ink = att.ink_patches(x, p, ink_threshold)  # (B, G, G)
    visible = mask.reshape(-1, grid, grid).numpy() == 0
    on_ink = {m: {"ink_mass": att.ink_mass(att.pool_to_patches(v, p), ink)} for m, v in saliency.items()}
    on_ink[name] |= {
        "ink_mass_masked": att.ink_mass(att.pool_to_patches(masked_saliency, p), ink),
        "max_in_masked_patches": float((masked_saliency * pixel_mask).max()),
    }
    metrics = {
        "model": name,
        "n_images": int(len(x)),
        "ink_threshold": ink_threshold,
        "ink_area": float(ink.mean()),
        "ink_area_visible": float((ink & visible).sum() / visible.sum()),
        "rollout": {
            "ink_mass": att.ink_mass(rollout, ink),
            "ink_mass_masked": att.ink_mass(rollout_m, ink),
            "max_patch_weight": float(np.nanmax(rollout.reshape(len(x), -1), axis=1).mean()),
        },
        "cls_attention": {
            "ink_mass_per_layer": [att.ink_mass(cls_maps[layer].mean(1), ink) for layer in range(len(cls_maps))],
        },
        "study_heatmap": {"ink_mass": att.ink_mass(att.pool_to_patches(study, p), ink)},
        "saliency": on_ink,
    }
    arrays = {
        "cls_maps": cls_maps,
        "cls_maps_masked": cls_maps_m,
        "rollout": rollout,
        "rollout_masked": rollout_m,
        "study_heatmap": study,
        **{f"{m}_saliency": v for m, v in saliency.items()},
        f"{name}_saliency_masked": masked_saliency,
        "pixel_mask": pixel_mask,
    }
    return metrics, arrays


def weights_analysis(models: dict, seed: int, eps_abs: float, eps_rel: float) -> tuple[dict, dict]:
    """Near-zero weights and per-layer histograms of every model, trained and at initialisation."""
    metrics = {"eps_abs": eps_abs, "eps_rel": eps_rel, "init_seed": seed}
    hists = {}
    for name, init in init_models(models, seed).items():
        trained = models[name]
        metrics[name] = {
            state: wts.near_zero_summary(m, eps_abs, eps_rel) for state, m in (("trained", trained), ("init", init))
        }
        hists[name] = wts.trained_and_init_histograms(trained, init)
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


def _scorecard(models: dict, data: dict, x, y, seed: int) -> dict:
    trains = {"train": (data["train_x"], data["train_y"])}
    if "full_train_x" in data:
        trains["full_train"] = (data["full_train_x"], data["full_train_y"])
    mean_image = data["train_x"].mean(0, keepdim=True)
    test = (data["score_x"], data["score_y"]) if "score_x" in data else (x, y)
    return {
        "train_sets": {k: int(len(v[0])) for k, v in trains.items()},
        "n_test": int(len(test[0])),
        **{
            name: scorecard(
                model, test, trains, mean_image, SWEEP_RATIOS if kind_of(model).masked_reconstruct else (), seed
            )
            for name, model in models.items()
        },
        "raw_pixels": {"classifiers": {k: classifier_scores(None, v, test) for k, v in trains.items()}},
    }


def run_analysis(
    models: dict,
    data: dict,
    settings: "ReportSettings | None" = None,
    cache: AnalysisCache | None = None,
    on_stage=None,
) -> AnalysisResult:
    """
    Every analysis of the report, as numbers and arrays, for any models of registered kinds.

    Args:
        models: `{name: model}` (`mae_hf.registry`), all for the same image size; eval mode is set and restored by
            each analysis. The attention stage needs a kind with attention maps; the study's verdicts need a "mae"
            and a "dae".
        data: `{"x": (N, C, H, W), "y": (N,), "train_x", "train_y", "class_names"}` as `load_report_data` returns.
        settings: `ReportSettings`; `settings.n` is ignored here (the data decide).
        cache: where latents and t-SNE maps are cached (`None`: no cache).
        on_stage: optional callable `(stage_name, index, n_stages)`, called as each stage starts (progress bars,
            the app's status line).
    """
    settings = settings or ReportSettings()
    x, y = data["x"], data["y"]
    corruptions = default_corruptions(models, settings.mask_ratio, settings.noise_factor)
    mask_ratio, noise_factor = corruptions["mask"].mask_ratio, corruptions["noise"].noise_factor
    own = {name: own_corruption(m).kind for name, m in models.items()}
    timings: dict[str, float] = {}
    metrics: dict = {}

    def stage(name):
        if on_stage is not None:
            on_stage(name, STAGES.index(name), len(STAGES))
        return time.perf_counter()

    t = stage("reconstruction")
    recs = evaluate_reconstructions(models, x, mask_ratio, noise_factor, seed=settings.seed)
    per_image = {f"{m}_{c}": values for (m, c), (values, _) in recs.items()}
    table = cross_table({pair: values for pair, (values, _) in recs.items()})
    masker = next((m for m, c in own.items() if c == "mask"), None)
    metrics["reconstruction"] = {
        "mask_ratio": mask_ratio,
        "noise_factor": noise_factor,
        "data_range": 1.0,
        "ssim_settings": SSIM_DESCRIPTION,
        "models": list(models),
        "own": own,
        **table,
    }
    if masker is not None:
        values, rec = recs[masker, "mask"]
        metrics["reconstruction"]["data_range_check"] = _data_range_check(rec.shown, x, values["psnr"], values["ssim"])
    timings["reconstruction"] = time.perf_counter() - t

    t = stage("latents_and_tsne")
    maps = compute_latent_maps(models, x, data["train_x"], settings.seed, settings.study_mask_ratio, cache)
    timings["latents_and_tsne"] = time.perf_counter() - t

    t = stage("clustering")
    with threadpool_limits(limits=1, user_api="blas"):  # small problems: extra BLAS threads only add contention
        metrics["latents"] = cl.feature_set_measures(
            maps, y.numpy(), data["train_y"].numpy(), data["class_names"], settings.knn_k, feature_labels()
        )
    timings["clustering"] = time.perf_counter() - t

    t = stage("attention_saliency")
    attention, watcher = {}, next((m for m, model in models.items() if kind_of(model).has_attention), None)
    if watcher is not None:
        k = min(settings.n_attention, len(x))
        mask_noise = draw_noise(models[watcher], "mask", torch.arange(k), settings.seed)  # the reconstruction's masks
        metrics["attention"], attention = attention_analysis(
            models, watcher, x[:k], mask_noise, mask_ratio, settings.ink_threshold
        )
    timings["attention_saliency"] = time.perf_counter() - t

    t = stage("weights")
    metrics["weights"], hists = weights_analysis(models, settings.init_seed, settings.eps_abs, settings.eps_rel)
    timings["weights"] = time.perf_counter() - t

    t = stage("scorecard")
    if settings.scorecard:
        metrics["scorecard"] = _scorecard(models, data, x, y, settings.seed)
    timings["scorecard"] = time.perf_counter() - t

    t = stage("verdicts")
    if {"dae", "mae"} <= set(models):  # the study's claims compare its two models
        metrics["verdicts"] = ver.compute_verdicts(metrics["latents"], metrics["weights"], table)
    timings["verdicts"] = time.perf_counter() - t

    metrics["settings"] = asdict(settings) | {
        "mask_ratio": mask_ratio,
        "noise_factor": noise_factor,
        "n": int(len(x)),
        "n_train": int(len(data["train_x"])),
        "tsne": dict(cl.TSNE_SETTINGS, library="openTSNE"),
    }
    metrics["models"] = {f"{name}_fingerprint": model_fingerprint(m) for name, m in models.items()}
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
