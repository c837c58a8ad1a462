"""Every analysis of the report as numbers and arrays: `run_analysis` → `AnalysisResult`. Pure apart from the
cache: no figures, no files (the writer makes those); the app runs the same function and caches its result.
"""

import logging
import time
from dataclasses import asdict, dataclass, field

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
from ..scorecard import classifier_scores, field_protocol, scorecard
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
    "score_models",
]

STAGES = ("reconstruction", "latents_and_tsne", "clustering", "attention_saliency", "weights", "scorecard", "verdicts")
# The mask ratios of the scorecard's sweep (the MAE against predicting black or the mean image).
SWEEP_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)


def _help(text: str) -> dict:
    return {"help": text}


@dataclass
class ReportSettings:
    """
    Everything that changes the numbers of `run_analysis` (the report's and the app's; stored in `metrics.json` under
    `settings`, with the images' count from the data). Which images are read is `DataSettings`'. Flags of
    `mae-hf report` (`HfArgumentParser`).

    Attributes:
        seed: seeds masks, noise, the study's masked latents and t-SNE. init_seed: seed of the models rebuilt at
            initialisation for the weight comparison and the scorecard's random-init controls.
        mask_ratio / noise_factor: corruptions (default: each model's own config).
        study_mask_ratio: masking of the study's masked-flattened MAE latent.
        n_attention: images for attention/saliency statistics. n_show: images in each figure.
        eps_abs / eps_rel: near-zero thresholds (absolute, and × each layer's std).
        knn_k: neighbours of the kNN classifier. ink_threshold: a patch "has ink" if its mean pixel exceeds it.
        scorecard: also compute `mae_hf.scorecard` (classifiers on every training set the data hold; the field's
            protocol for each model, its random-init twin and raw pixels on the largest of them; the mask-ratio
            sweep against the black and mean-image baselines). Off by default: it costs more than the rest of the
            report (`make report` turns it on for docs/RESULTS.md).
    """

    seed: int = field(default=0, metadata=_help("seed of masks, noise and t-SNE (default: 0)"))
    init_seed: int = field(
        default=0,
        metadata=_help(
            "seed of the models rebuilt at initialisation, for the weights and the scorecard's controls (default: 0)"
        ),
    )
    mask_ratio: float | None = field(default=None, metadata=_help("masking ratio (default: the models' configs)"))
    noise_factor: float | None = field(default=None, metadata=_help("noise std (default: the models' configs)"))
    study_mask_ratio: float = field(
        default=0.75, metadata=_help("masking of the study's masked, flattened MAE latent (default: 0.75)")
    )
    n_attention: int = field(
        default=256, metadata=_help("images of the attention and saliency statistics (default: 256)")
    )
    n_show: int = field(default=8, metadata=_help("images in each figure (default: 8)"))
    eps_abs: float = field(default=wts.DEFAULT_EPS_ABS, metadata=_help("near-zero weight: |w| below this"))
    eps_rel: float = field(
        default=wts.DEFAULT_EPS_REL, metadata=_help("near-zero weight: |w| below this times its layer's std")
    )
    knn_k: int = field(default=5, metadata=_help("neighbours of the kNN classifier (default: 5)"))
    ink_threshold: float = field(
        default=0.1, metadata=_help("a patch has ink where its mean pixel exceeds this (default: 0.1)")
    )
    scorecard: bool = field(
        default=False,
        metadata=_help(
            "also compute the scorecard: 5-NN and probe on every training set, the field's weighted kNN and "
            "validation-tuned probes (each model, its random-init twin, raw pixels), the mask-ratio sweep against "
            "the baselines (minutes more; `make report` passes it for docs/RESULTS.md)"
        ),
    )


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


def score_models(models: dict, data: dict, x, y, seed: int, init_seed: int = 0, sweep_ratios=SWEEP_RATIOS) -> dict:
    """The report's scorecard section: `mae_hf.scorecard.scorecard` for each model of `models` and the raw pixels'
    classifiers, on the scored images (`data["score_x"]` where `load_analysis_data` gave them, else `x`, `y`), the
    classifiers fit on each training set `data` holds (`train`, and `full_train` where given), the mask-ratio sweep
    at `sweep_ratios` for models that mask their own input, and the field's protocol (`field_protocol`: each model,
    its random-init twin under `init_seed`, the raw pixels) on the largest training set; also what `mae-hf
    convert-study` scores the study's converted checkpoints with."""
    trains = {"train": (data["train_x"], data["train_y"])}
    if "full_train_x" in data:
        trains["full_train"] = (data["full_train_x"], data["full_train_y"])
    mean_image = data["train_x"].mean(0, keepdim=True)
    test = (data["score_x"], data["score_y"]) if "score_x" in data else (x, y)
    # the field's protocol on the largest training set the data hold (all of the dataset's with --full_train)
    field_train = "full_train" if "full_train" in trains else "train"
    protocol = field_protocol(models, trains[field_train], test, init_seed) | {"train_set": field_train}
    return {
        "train_sets": {k: int(len(v[0])) for k, v in trains.items()},
        "n_test": int(len(test[0])),
        **{
            name: scorecard(
                model, test, trains, mean_image, sweep_ratios if kind_of(model).masked_reconstruct else (), seed
            )
            for name, model in models.items()
        },
        "raw_pixels": {"classifiers": {k: classifier_scores(None, v, test) for k, v in trains.items()}},
        "field_protocol": protocol,
    }


def run_analysis(
    models: dict,
    data: dict,
    settings: "ReportSettings | None" = None,
    cache: AnalysisCache | None = None,
    on_stage=None,
) -> AnalysisResult:
    """
    Every analysis of the report, as numbers and arrays, for any models of registered kinds: the `STAGES` in order.

    Args:
        models: `{name: model}` (`mae_hf.registry`), all for the same image size; eval mode is set and restored by
            each analysis. The attention stage needs a kind with attention maps; the study's verdicts need a "mae"
            and a "dae".
        data: `{"x": (N, C, H, W), "y": (N,), "train_x", "train_y", "class_names"}` as `load_analysis_data` returns.
        settings: `ReportSettings`.
        cache: where latents and t-SNE maps are cached (`None`: no cache).
        on_stage: optional callable `(stage_name, index, n_stages)`, called as each stage starts (progress bars,
            the app's status line).
    """
    settings = settings or ReportSettings()
    corruptions = default_corruptions(models, settings.mask_ratio, settings.noise_factor)
    mask_ratio, noise_factor = corruptions["mask"].mask_ratio, corruptions["noise"].noise_factor
    state = _Analysis(models, data, settings, cache, mask_ratio, noise_factor)
    for name in STAGES:
        if on_stage is not None:
            on_stage(name, STAGES.index(name), len(STAGES))
        t = time.perf_counter()
        getattr(state, name)()
        state.timings[name] = time.perf_counter() - t
    return state.result()


class _Analysis:
    """One `run_analysis`: a method per stage, each adding its numbers to `metrics` and its arrays beside them."""

    def __init__(self, models, data, settings, cache, mask_ratio, noise_factor):
        self.models, self.data, self.settings, self.cache = models, data, settings, cache
        self.mask_ratio, self.noise_factor = mask_ratio, noise_factor
        self.x, self.y = data["x"], data["y"]
        self.metrics: dict = {}
        self.timings: dict[str, float] = {}
        self.attention: dict = {}

    def reconstruction(self) -> None:
        own = {name: own_corruption(m).kind for name, m in self.models.items()}
        self.recs = evaluate_reconstructions(
            self.models, self.x, self.mask_ratio, self.noise_factor, seed=self.settings.seed
        )
        self.table = cross_table({pair: values for pair, (values, _) in self.recs.items()})
        self.metrics["reconstruction"] = {
            "mask_ratio": self.mask_ratio,
            "noise_factor": self.noise_factor,
            "data_range": 1.0,
            "ssim_settings": SSIM_DESCRIPTION,
            "models": list(self.models),
            "own": own,
            **self.table,
        }
        masker = next((m for m, c in own.items() if c == "mask"), None)
        if masker is not None:
            values, rec = self.recs[masker, "mask"]
            self.metrics["reconstruction"]["data_range_check"] = _data_range_check(
                rec.shown, self.x, values["psnr"], values["ssim"]
            )

    def latents_and_tsne(self) -> None:
        s = self.settings
        self.maps = compute_latent_maps(
            self.models, self.x, self.data["train_x"], s.seed, s.study_mask_ratio, self.cache
        )

    def clustering(self) -> None:
        with threadpool_limits(limits=1, user_api="blas"):  # small problems: extra BLAS threads only add contention
            self.metrics["latents"] = cl.feature_set_measures(
                self.maps,
                self.y.numpy(),
                self.data["train_y"].numpy(),
                self.data["class_names"],
                self.settings.knn_k,
                feature_labels(),
            )

    def attention_saliency(self) -> None:
        watcher = next((m for m, model in self.models.items() if kind_of(model).has_attention), None)
        if watcher is None:
            return
        k = min(self.settings.n_attention, len(self.x))
        # the reconstruction stage's masks for the same images
        mask_noise = draw_noise(self.models[watcher], "mask", torch.arange(k), self.settings.seed)
        self.metrics["attention"], self.attention = attention_analysis(
            self.models, watcher, self.x[:k], mask_noise, self.mask_ratio, self.settings.ink_threshold
        )

    def weights(self) -> None:
        s = self.settings
        self.metrics["weights"], self.hists = weights_analysis(self.models, s.init_seed, s.eps_abs, s.eps_rel)

    def scorecard(self) -> None:
        if self.settings.scorecard:
            s = self.settings
            self.metrics["scorecard"] = score_models(self.models, self.data, self.x, self.y, s.seed, s.init_seed)

    def verdicts(self) -> None:
        if {"dae", "mae"} <= set(self.models):  # the study's claims compare its two models
            self.metrics["verdicts"] = ver.compute_verdicts(
                self.metrics["latents"], self.metrics["weights"], self.table
            )

    def result(self) -> AnalysisResult:
        m, data = self.metrics, self.data
        m["settings"] = {
            "n": int(len(self.x)),
            "n_train": int(len(data["train_x"])),
            **asdict(self.settings),
            "mask_ratio": self.mask_ratio,
            "noise_factor": self.noise_factor,
            "scorecard_n": int(len(data["score_x"])) if "score_x" in data else None,
            "tsne": dict(cl.TSNE_SETTINGS, library="openTSNE"),
        }
        m["models"] = {f"{name}_fingerprint": model_fingerprint(model) for name, model in self.models.items()}
        m["timings_s"] = self.timings
        if self.cache is not None:
            m["cache"] = {
                "dir": str(self.cache.dir) if self.cache.dir else None,
                "hits": self.cache.hits,
                "misses": self.cache.misses,
            }
        return AnalysisResult(
            metrics=m,
            per_image={f"{model}_{c}": values for (model, c), (values, _) in self.recs.items()},
            examples=_examples(self.x, self.recs, self.settings.n_show),
            latent_maps=self.maps,
            attention=self.attention,
            weights=self.hists,
            y=self.y.numpy(),
            class_names=list(data["class_names"]),
        )
