"""The app's analyses, without gradio: the dataset-level ones (test-set metrics, t-SNE maps, classifiers, weights,
verdicts) computed once in a background thread and cached, and the per-digit ones (placing a digit into the maps,
its nearest training neighbours, attention and saliency under the Reconstruct tab's mask).

The heavy modules (`mae_hf.report`, scikit-learn, openTSNE) are imported inside the functions that need them, so
importing this module costs nothing at app start.
"""

import copy
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .corruption import random_patch_noise
from .mae import num_patches

logger = logging.getLogger(__name__)

__all__ = [
    "ExplorerSettings",
    "DatasetSummary",
    "BackgroundAnalysis",
    "summarize_analysis",
    "place_digit",
    "digit_mask_noise",
    "digit_attention",
    "PLACEABLE_FEATURES",
]

# Feature sets a new digit can be placed into: deterministic, so one digit always gives the same point. (The
# study's masked-flattened MAE latent depends on a random mask, so a placement would be noise.)
PLACEABLE_FEATURES = ("dae", "mae_cls", "mae_mean", "raw_pixels")
# Per-image metric series of the Metrics tab: (model, corruption) → label.
METRIC_SERIES = {
    ("mae", "masking"): "MAE (masking, pasted)",
    ("dae", "noise"): "DAE (noise)",
    ("dae", "masking"): "DAE (masking)",
    ("mae", "noise"): "MAE (noise)",
}
SUMMARY_VERSION = 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as err:
        raise ValueError(f"{name}={value!r} must be a whole number (e.g. {name}={default}).") from err


@dataclass
class ExplorerSettings:
    """
    What the background analysis computes (each field also from an environment variable, for a Space).

    Attributes:
        n: test digits analysed (`MAE_HF_APP_N`, default 1000). n_train: train digits the kNN / linear probe are
            fit on and neighbours are searched in (`MAE_HF_APP_N_TRAIN`, default 4000).
        dataset / split: the data (`MAE_HF_APP_DATASET`, default the embedded MNIST; split `test`).
        n_attention: digits for the dataset-level attention statistics. seed: masks, noise and t-SNE.
        cache_dir: the `AnalysisCache` folder (`MAE_HF_CACHE`, default `~/.cache/mae_hf`); None disables it.
    """

    n: int = 1000
    n_train: int = 4000
    dataset: str = "mnist"
    split: str = "test"
    n_attention: int = 64
    seed: int = 0
    cache_dir: str | None = field(default_factory=lambda: os.environ.get("MAE_HF_CACHE",
                                                                         os.path.expanduser("~/.cache/mae_hf")))

    @classmethod
    def from_env(cls, **overrides) -> "ExplorerSettings":
        """Defaults, then `MAE_HF_APP_N`, `MAE_HF_APP_N_TRAIN`, `MAE_HF_APP_DATASET`, then `overrides`."""
        s = cls(n=_env_int("MAE_HF_APP_N", cls.n), n_train=_env_int("MAE_HF_APP_N_TRAIN", cls.n_train),
                dataset=os.environ.get("MAE_HF_APP_DATASET", cls.dataset))
        for k, v in overrides.items():
            setattr(s, k, v)
        if s.n < 20 or s.n_train < 20:
            raise ValueError(f"The app's analysis needs at least 20 test and 20 train digits, got n={s.n}, "
                             f"n_train={s.n_train}; raise MAE_HF_APP_N / MAE_HF_APP_N_TRAIN.")
        return s


@dataclass
class DatasetSummary:
    """
    What the dataset-level tabs show, as numbers and arrays (JSON + arrays, so it caches as one `.npz`).

    Attributes:
        metrics: `run_analysis`'s JSON-ready metrics (reconstruction, latents, weights, verdicts, settings).
        per_image: `{series label: (n,) values}` for `psnr`, `ssim` (and the corrupted inputs' `psnr_input`).
        histograms: `{"dae"|"mae": {"trained"|"init": {layer: {"counts", "edges"}}}}`.
        y: (n,) labels of the analysed digits. class_names: names of the classes.
    """

    metrics: dict
    per_image: dict
    histograms: dict
    y: np.ndarray
    class_names: list

    def to_arrays(self) -> dict[str, np.ndarray]:
        text = json.dumps({"metrics": self.metrics, "histograms": _listify(self.histograms),
                           "class_names": list(self.class_names)})
        arrays = {"summary_json": np.array(text), "y": np.asarray(self.y)}
        for metric, series in self.per_image.items():
            for i, (label, values) in enumerate(series.items()):
                arrays[f"{metric}__{i}"] = np.asarray(values, dtype=np.float64)
                arrays[f"{metric}__{i}__label"] = np.array(label)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "DatasetSummary":
        doc = json.loads(str(arrays["summary_json"]))
        per_image: dict = {}
        for key in sorted(k for k in arrays if k.count("__") == 1 and k != "summary_json"):
            metric, i = key.split("__")
            per_image.setdefault(metric, {})[str(arrays[f"{key}__label"])] = arrays[key]
        hist = {m: {s: {layer: {k: np.asarray(v) for k, v in h.items()} for layer, h in layers.items()}
                    for s, layers in states.items()} for m, states in doc["histograms"].items()}
        return cls(metrics=doc["metrics"], per_image=per_image, histograms=hist, y=arrays["y"],
                   class_names=doc["class_names"])


def _listify(obj):
    if isinstance(obj, dict):
        return {str(k): _listify(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def summarize_analysis(analysis: dict) -> DatasetSummary:
    """`run_analysis`'s result → the `DatasetSummary` the app's tabs show (drops the large per-image arrays)."""
    from .report import _jsonable

    recs = analysis["reconstructions"]
    per_image = {
        "psnr": {label: recs[key].metrics["psnr"] for key, label in METRIC_SERIES.items()}
        | {"masked input": recs["mae", "masking"].metrics["psnr_input"],
           "noisy input": recs["dae", "noise"].metrics["psnr_input"]},
        "ssim": {label: recs[key].metrics["ssim"] for key, label in METRIC_SERIES.items()},
    }
    metrics = {k: v for k, v in analysis["metrics"].items() if k != "attention"}
    return DatasetSummary(metrics=_jsonable(metrics), per_image=per_image, histograms=analysis["arrays"]["weights"],
                          y=np.asarray(analysis["arrays"]["y"]), class_names=list(analysis["arrays"]["class_names"]))


class BackgroundWork:
    """
    Work done once in a daemon thread. `error` stays None unless it fails (then it says why); `_done` is set when
    it is over. `ready` / `failed` say how it ended (both False while it runs).
    """

    def __init__(self):
        self._done = threading.Event()
        self.error: str | None = None

    @property
    def ready(self) -> bool:
        return self._done.is_set() and self.error is None

    @property
    def failed(self) -> bool:
        return self._done.is_set() and self.error is not None


class BackgroundAnalysis(BackgroundWork):
    """
    The dataset-level analysis, run once in a daemon thread on private copies of the models (so it never changes
    the shared MAE's mask ratio under a request), with its progress readable at any time.

    On a second start with the same models, data and settings everything comes from the `AnalysisCache`
    (the summary, latents, t-SNE maps and decoded data), so the tabs are ready within a second or two.

    Attributes (after `ready`): `summary` (`DatasetSummary`), `maps` (`compute_latent_maps`'s result for the
    placeable feature sets), `train_x` / `train_y` (the digits neighbours are searched in), `embeddings` (openTSNE
    maps that can place new points, built lazily per feature set).
    """

    STAGES = ("loading the data", "reconstruction", "latents_and_tsne", "clustering", "attention_saliency",
              "weights", "verdicts", "preparing the maps")

    def __init__(self, dae, mae, settings: ExplorerSettings | None = None):
        super().__init__()
        self.settings = settings or ExplorerSettings.from_env()
        self._models = (dae, mae)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.stage, self.stage_index = "waiting to start", 0
        self.seconds: float | None = None
        self.from_cache = False
        self.summary: DatasetSummary | None = None
        self.maps: dict = {}
        self.train_x = self.train_y = None
        self.embeddings: dict = {}

    # -- state -----------------------------------------------------------------------------------------------------

    def progress(self) -> float:
        """Fraction of stages done, in [0, 1]."""
        return 1.0 if self._done.is_set() else self.stage_index / len(self.STAGES)

    def status(self) -> str:
        """One line of Markdown for the tabs: what is being computed, or that it is done (and how)."""
        s = self.settings
        if self.ready:
            how = "from the cache" if self.from_cache else f"in {self.seconds:.0f} s"
            return (f"Computed on the first {s.n:,} `{s.split}` digits of `{s.dataset}` (classifiers and neighbours: "
                    f"{len(self.train_x):,} train digits), {how}.")
        if self.failed:
            return f"**The dataset analysis failed:** {self.error}"
        return (f"⏳ **Computing the dataset analysis in the background** ({s.n:,} test digits, {s.n_train:,} train "
                f"digits): {self.stage.replace('_', ' ')} — step {self.stage_index + 1} of {len(self.STAGES)}. "
                "This tab fills in by itself when it is done.")

    def start(self) -> "BackgroundAnalysis":
        """Start the thread (once); returns self."""
        # pyplot is imported here, not in the thread: gradio switches matplotlib's backend around every request,
        # which fails on a pyplot that another thread is half-way through importing.
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401

        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mae_hf-analysis", daemon=True)
                self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until done (or `timeout` s); True when ready."""
        self._done.wait(timeout)
        return self.ready

    def require(self) -> None:
        """Raise `RuntimeError` with the progress unless the analysis is ready."""
        if not self.ready:
            raise RuntimeError(self.error and f"The dataset analysis failed: {self.error}" or
                               f"The dataset analysis is still running ({self.progress():.0%} done: "
                               f"{self.stage.replace('_', ' ')}); try again in a few seconds.")

    # -- work ------------------------------------------------------------------------------------------------------

    def _set_stage(self, name: str, index: int) -> None:
        self.stage, self.stage_index = name, index
        logger.info("Dataset analysis: %s (%d/%d)", name.replace("_", " "), index + 1, len(self.STAGES))

    def _run(self) -> None:
        try:  # below the request threads' priority, so answers stay fast while this runs
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except (AttributeError, OSError):
            pass
        start = time.perf_counter()
        try:
            self._compute()
            self.seconds = time.perf_counter() - start
            logger.info("Dataset analysis ready in %.1f s (%s)", self.seconds, "cache" if self.from_cache else "computed")
        except Exception as err:  # noqa: BLE001 - shown in the tabs, the app keeps serving
            logger.exception("The dataset analysis failed")
            self.error = f"{type(err).__name__}: {err}"
        finally:
            self._done.set()

    def _compute(self) -> None:
        from . import report

        s = self.settings
        dae, mae = (copy.deepcopy(m).eval() for m in self._models)  # private copies: the MAE config is mutated
        cache = report.AnalysisCache(s.cache_dir)
        self._set_stage("loading the data", 0)
        data = report.load_report_data(s.dataset, s.split, s.n, s.n_train, dae, mae, cache)
        settings = report.ReportSettings(n=s.n, n_train=s.n_train, seed=s.seed, n_attention=s.n_attention)
        key = [SUMMARY_VERSION, report.model_fingerprint(dae), report.model_fingerprint(mae),
               report._array_fingerprint(data["x"], data["train_x"]), asdict(settings)]
        computed = []

        def compute() -> dict:
            computed.append(True)
            analysis = report.run_analysis(dae, mae, data, settings, cache, progress=False,
                                           on_stage=lambda name, i, _: self._set_stage(name, i + 1))
            return summarize_analysis(analysis).to_arrays()

        summary = DatasetSummary.from_arrays(cache.arrays("app-summary", key, compute))
        self.from_cache = not computed
        self._set_stage("preparing the maps", len(self.STAGES) - 1)
        maps = report.compute_latent_maps(dae, mae, data["x"], data["train_x"], s.seed, settings.study_mask_ratio, cache)
        self.maps = {k: maps[k] for k in PLACEABLE_FEATURES}
        self.train_x, self.train_y = data["train_x"], data["train_y"].numpy()
        self.summary = summary

    def embedding(self, feature_set: str):
        """The openTSNE map of `feature_set` that can place new points (rebuilt from cached coordinates once)."""
        from .analysis import tsne_from_coordinates

        self.require()
        if feature_set not in self.maps:
            raise ValueError(f"Unknown feature set {feature_set!r}; choose one of {list(self.maps)}.")
        with self._lock:
            if feature_set not in self.embeddings:
                m = self.maps[feature_set]
                self.embeddings[feature_set] = tsne_from_coordinates(m["features"], m["coordinates"],
                                                                     seed=self.settings.seed)
            return self.embeddings[feature_set]


# --------------------------------------------------------------------------------------------------------------------
# One digit


def digit_features(dae, mae, pixel_values: torch.Tensor, feature_set: str) -> np.ndarray:
    """
    One feature set of `mae_hf.analysis.latents` for new images (the same extraction the maps were fit on).

    Args:
        pixel_values: (B, C, H, W) in [0, 1]. feature_set: one of `PLACEABLE_FEATURES`.

    Returns:
        (B, D) float32.
    """
    from .analysis import latents as lat

    if feature_set == "raw_pixels":
        return pixel_values.flatten(1).numpy().astype(np.float32)
    if feature_set == "dae":
        return lat.extract_dae_latents(dae, pixel_values)
    if feature_set in ("mae_cls", "mae_mean"):
        return lat.extract_mae_features(mae, pixel_values)[feature_set]
    raise ValueError(f"A digit can be placed into {list(PLACEABLE_FEATURES)}, not {feature_set!r}.")


def place_digit(embedding, features: np.ndarray, train_features: np.ndarray, k: int = 8) -> dict[str, np.ndarray]:
    """
    Place a new digit into a fitted t-SNE map and find its nearest training digits in the feature space itself.

    Args:
        embedding: an openTSNE map (`fit_tsne` / `tsne_from_coordinates`). features: (D,) or (1, D) of the digit.
        train_features: (N_train, D), same feature set. k: neighbours.

    Returns:
        `{"coordinates": (2,), "neighbours": (k,) train indices nearest first, "distances": (k,) Euclidean}`.
    """
    from .analysis import tsne_transform

    f = np.atleast_2d(np.asarray(features, dtype=np.float64))
    train = np.asarray(train_features, dtype=np.float64)
    if f.shape != (1, train.shape[1]):
        raise ValueError(f"Expected one digit's features of width {train.shape[1]}, got shape {f.shape}.")
    coords = tsne_transform(embedding, f)[0]
    d = np.linalg.norm(train - f, axis=1)  # (N_train,)
    k = min(k, len(train))
    nearest = np.argsort(d, kind="stable")[:k]
    return {"coordinates": coords, "neighbours": nearest, "distances": d[nearest]}


def digit_mask_noise(mae_config, seed: int) -> torch.Tensor:
    """The (1, L) ViTMAE noise behind the Reconstruct tab's mask for `seed` (`compare_reconstructions` draws it first)."""
    generator = torch.Generator().manual_seed(int(seed))
    return random_patch_noise(1, num_patches(mae_config), generator=generator)


def digit_attention(dae, mae, pixel_values: torch.Tensor, mask_ratio: float, seed: int) -> dict[str, np.ndarray]:
    """
    Attention and saliency of one digit, with masking off and under the mask the Reconstruct tab uses for `seed`.

    Args:
        pixel_values: (1, C, H, W) in [0, 1]. mask_ratio: in [0, 1); 0 = no mask (then the "masked" maps equal the
            unmasked ones). Callers sharing the MAE across threads must serialise calls (ViTMAE reads the mask
            ratio from its config).

    Returns:
        `{"cls_maps", "cls_maps_masked": (layers, heads, G, G), "rollout", "rollout_masked": (G, G) — nan at masked
        patches; "dae_saliency", "mae_saliency", "mae_saliency_masked": (H, W) in [0, 1]; "pixel_mask": (H, W), 1 =
        masked; "masked_input": (C, H, W), masked pixels 0}`.
    """
    from .analysis import attention as att
    from .analysis import saliency as sal
    from .mae import mae_attentions

    if pixel_values.ndim != 4 or pixel_values.shape[0] != 1:
        raise ValueError(f"`pixel_values` must be one image (1, C, H, W), got {tuple(pixel_values.shape)}.")
    if not 0.0 <= float(mask_ratio) < 1.0:
        raise ValueError(f"The mask ratio must be in [0, 1), got {mask_ratio}.")
    p, grid = mae.config.patch_size, mae.config.image_size // mae.config.patch_size
    attn, ids_keep, _ = mae_attentions(mae, pixel_values)  # masking off, spatial order
    noise = digit_mask_noise(mae.config, seed)
    attn_m, ids_keep_m, mask = mae_attentions(mae, pixel_values, mask_ratio=float(mask_ratio), noise=noise)
    pixel_mask = att.upsample_grid(mask.reshape(grid, grid).numpy(), p)  # (H, W)
    return {
        "cls_maps": att.cls_attention_maps(attn, ids_keep, grid)[:, 0],
        "cls_maps_masked": att.cls_attention_maps(attn_m, ids_keep_m, grid)[:, 0],
        "rollout": att.rollout_cls_map(attn, ids_keep, grid)[0],
        "rollout_masked": att.rollout_cls_map(attn_m, ids_keep_m, grid)[0],
        "dae_saliency": sal.dae_saliency(dae, pixel_values)[0].numpy(),
        "mae_saliency": sal.mae_saliency(mae, pixel_values)[0].numpy(),
        "mae_saliency_masked": sal.mae_saliency(mae, pixel_values, mask_ratio=float(mask_ratio), noise=noise)[0].numpy(),
        "pixel_mask": pixel_mask,
        "masked_input": (pixel_values[0] * (1 - torch.from_numpy(pixel_mask)[None].float())).numpy(),
    }
