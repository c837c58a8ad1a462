"""The app's dataset analysis: the report's `run_analysis` on the test digits, once, in a background thread, beside
the requests (both only read the models), with its progress readable at any time. Its `AnalysisResult` is cached in the
report's `AnalysisCache`, so a second start with the same models and data is ready within a second or two.

A first start need not compute it either: `write_shipped` saves the result beside the models it belongs to (the
bundled MNIST models' `pretrained/app-analysis-mnist.npz`, written by `mae-hf app-analysis` in `make report`), without the
feature arrays that are quicker to recompute than to ship, and under the key of everything it depends on (the models'
weights, the digits, the settings). A start whose key matches loads it and recomputes only those features (a few
seconds) instead of the whole analysis (minutes on a Space); any other models or settings compute as before. It also
keeps the images it was computed on (a few MB), so a set whose dataset is not shipped with the package (Fashion-MNIST)
fills its tabs with no network; `MAE_HF_APP_DATASET` asks for other images, loaded as usual.
"""

import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["AnalysisSettings", "BackgroundAnalysis"]

RESULT_VERSION = 2  # 2: results name their models (any registered kinds)
# The array a shipped analysis keeps its key in (JSON), and the arrays it leaves out (recomputed at start).
SHIPPED_KEY = "shipped_key"
RECOMPUTED = ("features", "train_features")
# The images a shipped analysis was computed on: arrays `images/<name>`, and which split and counts they are.
SHIPPED_IMAGES = ("x", "y", "train_x", "train_y", "class_names")
SHIPPED_IMAGES_OF = "images_of"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError as err:
        raise ValueError(f"{name}={value!r} must be a whole number (e.g. {name}={default}).") from err


@dataclass
class AnalysisSettings:
    """
    What the app's dataset analysis computes (each also from the environment, as on a Space).

    Attributes:
        n: test digits analysed (`MAE_HF_APP_N`, default 1000). n_train: train digits the kNN and probe are fit on
            and neighbours are searched in (`MAE_HF_APP_N_TRAIN`, default 4000). dataset / split: the data
            (`MAE_HF_APP_DATASET`, default the shipped MNIST; split `test`). n_attention: digits for the attention
            statistics. seed: masks, noise and t-SNE. cache_dir: the `AnalysisCache` folder (`MAE_HF_CACHE`,
            default `~/.cache/mae_hf`); None disables it. shipped: a shipped analysis (`write_shipped`) to use when
            it belongs to these models and settings (`MAE_HF_APP_ANALYSIS`; the app passes the bundled models').
            shipped_images: read the images from the shipped analysis when it holds the same split and counts
            (False when `MAE_HF_APP_DATASET` names the dataset: its images are loaded).
    """

    n: int = 1000
    n_train: int = 4000
    dataset: str = "mnist"
    split: str = "test"
    n_attention: int = 64
    seed: int = 0
    cache_dir: str | None = field(
        default_factory=lambda: os.environ.get("MAE_HF_CACHE", os.path.expanduser("~/.cache/mae_hf"))
    )
    shipped: str | None = field(default_factory=lambda: os.environ.get("MAE_HF_APP_ANALYSIS"))
    shipped_images: bool = True

    @classmethod
    def from_env(cls, **overrides) -> "AnalysisSettings":
        """Defaults, then `MAE_HF_APP_N`, `MAE_HF_APP_N_TRAIN`, `MAE_HF_APP_DATASET`, then `overrides`."""
        s = cls(
            n=_env_int("MAE_HF_APP_N", cls.n),
            n_train=_env_int("MAE_HF_APP_N_TRAIN", cls.n_train),
            dataset=os.environ.get("MAE_HF_APP_DATASET", cls.dataset),
        )
        if os.environ.get("MAE_HF_APP_DATASET"):
            s.shipped_images = False
            overrides.pop("dataset", None)  # the environment names the dataset
        for k, v in overrides.items():
            setattr(s, k, v)
        if s.n < 20 or s.n_train < 20:
            raise ValueError(
                f"The app's analysis needs at least 20 test and 20 train digits, got n={s.n}, "
                f"n_train={s.n_train}; raise MAE_HF_APP_N / MAE_HF_APP_N_TRAIN."
            )
        return s


class BackgroundAnalysis:
    """
    `run_analysis` in a daemon thread. After `ready`: `result` (`AnalysisResult`), `train_x` / `train_y` (the digits
    neighbours are searched in) and `embedding(key)` (an openTSNE map that places new points, built once per set).
    """

    def __init__(self, models: dict, settings: AnalysisSettings | None = None):
        self.settings = settings or AnalysisSettings.from_env()
        self._models = dict(models)
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.error: str | None = None
        self.stage, self.stage_index, self.n_stages = "waiting to start", 0, 1
        self.seconds: float | None = None
        self.source: str | None = None  # "computed", "cache" or "shipped"
        self.result = None
        self._arrays: dict | None = None
        self._key: list | None = None
        self._data: dict | None = None
        self.train_x = self.train_y = None
        self._embeddings: dict = {}

    @property
    def ready(self) -> bool:
        return self._done.is_set() and self.error is None

    @property
    def failed(self) -> bool:
        return self._done.is_set() and self.error is not None

    def progress(self) -> float:
        return 1.0 if self._done.is_set() else self.stage_index / self.n_stages

    def status(self, nouns: str = "digits") -> str:
        """One line of Markdown: what is being computed, that it failed and why, or how it was done (`nouns`: what the
        images are, in words: "digits", "items")."""
        s = self.settings
        if self.ready:
            how = {"cache": "from the cache", "shipped": "shipped with the models"}.get(
                self.source, f"in {self.seconds:.0f} s"
            )
            return (
                f"Computed on the first {s.n:,} `{s.split}` {nouns} of `{s.dataset}` (classifiers and neighbours: "
                f"{len(self.train_x):,} training {nouns}), {how}."
            )
        if self.failed:
            return f"**The dataset analysis failed:** {self.error}"
        return (
            f"**Computing the dataset analysis in the background** ({s.n:,} test {nouns}, {s.n_train:,} training "
            f"{nouns}): {self.stage}, step {self.stage_index + 1} of {self.n_stages}. This tab fills in by "
            "itself when it is done."
        )

    def start(self) -> "BackgroundAnalysis":
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mae_hf-analysis", daemon=True)
                self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        self._done.wait(timeout)
        return self.ready

    def _run(self) -> None:
        start = time.perf_counter()
        try:
            self._compute()
            self.seconds = time.perf_counter() - start
            logger.info("Dataset analysis ready in %.1f s (%s)", self.seconds, self.source)
        except Exception as err:  # noqa: BLE001 - shown in the tabs; the app keeps serving
            logger.exception("The dataset analysis failed")
            self.error = f"{type(err).__name__}: {err}"
        finally:
            self._done.set()

    def _set_stage(self, name: str, index: int, n_stages: int) -> None:
        """Stage 0 loads the data; then the report pipeline's stages, as it announces them."""
        self.stage, self.stage_index, self.n_stages = name.replace("_", " "), index, n_stages

    def _compute(self) -> None:
        from ..pipeline import (
            STAGES,
            AnalysisCache,
            AnalysisResult,
            DataSettings,
            ReportSettings,
            array_fingerprint,
            load_analysis_data,
            model_fingerprint,
            run_analysis,
        )

        s, models = self.settings, self._models
        cache = AnalysisCache(s.cache_dir)
        self._set_stage("loading the data", 0, 1 + len(STAGES))
        data = self._shipped_images() or load_analysis_data(
            DataSettings(s.dataset, s.split, s.n, s.n_train), models, cache
        )
        settings = ReportSettings(seed=s.seed, n_attention=s.n_attention, scorecard=False)
        key = [
            RESULT_VERSION,
            *({name: model_fingerprint(m)} for name, m in models.items()),
            array_fingerprint(data["x"], data["train_x"]),
            asdict(settings),
        ]
        shipped = self._read_shipped(key)
        if shipped is not None:
            self._set_stage("features for placing a digit", 1, 2)
            result = AnalysisResult.from_arrays(shipped)
            _add_placement_features(result, models, data)
            self.source = "shipped"
        else:
            computed = []

            def compute():
                computed.append(True)
                return run_analysis(
                    models, data, settings, cache, on_stage=lambda name, i, n: self._set_stage(name, i + 1, n + 1)
                ).to_arrays()

            self._arrays = cache.arrays("app-analysis", key, compute)
            result = AnalysisResult.from_arrays(self._arrays)
            self.source = "computed" if computed else "cache"
        self._key, self.result, self._data = key, result, data
        self.train_x, self.train_y = data["train_x"], data["train_y"].numpy()

    def _images_of(self) -> str:
        s = self.settings
        return json.dumps({"split": s.split, "n": s.n, "n_train": s.n_train})

    def _shipped_images(self) -> dict | None:
        """The images the shipped analysis was computed on, when it holds them for this split and these counts (the
        key, checked next, says whether they and the models are the ones it was computed for)."""
        from ..pipeline.cache import DAMAGED_ENTRY_ERRORS

        path = self.settings.shipped
        if not (self.settings.shipped_images and path and Path(path).is_file()):
            return None
        try:
            with np.load(path) as stored:
                if SHIPPED_IMAGES_OF not in stored.files or str(stored[SHIPPED_IMAGES_OF]) != self._images_of():
                    return None
                images = {k: stored[f"images/{k}"] for k in SHIPPED_IMAGES}
        except (*DAMAGED_ENTRY_ERRORS, KeyError):
            return None  # _read_shipped says what is wrong with the file
        import torch

        pixels = {k: torch.from_numpy(_from_stored(images[k])) for k in ("x", "train_x")}
        labels = {k: torch.from_numpy(images[k].astype(np.int64)) for k in ("y", "train_y")}
        return pixels | labels | {"class_names": [str(c) for c in images["class_names"]]}

    def _read_shipped(self, key: list) -> dict | None:
        """The shipped analysis's arrays if `settings.shipped` holds one computed under `key`, else None (a missing,
        damaged or foreign file is said in one line and computed around)."""
        from ..pipeline.cache import DAMAGED_ENTRY_ERRORS

        path = self.settings.shipped
        if not path or not Path(path).is_file():
            return None
        try:
            with np.load(path) as stored:
                if str(stored[SHIPPED_KEY]) != json.dumps(key, sort_keys=True):
                    logger.info("The shipped analysis %s is for other models or settings: computing", Path(path).name)
                    return None
                return {k: stored[k] for k in stored.files if k != SHIPPED_KEY}
        except DAMAGED_ENTRY_ERRORS as err:
            logger.warning("The shipped analysis %s is damaged (%s): computing", Path(path).name, type(err).__name__)
            return None

    def write_shipped(self, path: str | os.PathLike) -> Path:
        """Save the (computed or cached) analysis to ship with its models, without the features the app recomputes
        at start, under its key; written whole or not at all. Returns the path."""
        if not self.ready or self._arrays is None:
            raise ValueError("Only an analysis computed here (or from the cache) can be shipped; wait() for it first.")
        arrays = {k: v for k, v in self._arrays.items() if k.rsplit("/", 1)[-1] not in RECOMPUTED}
        d = self._data
        images = {
            "images/x": _to_stored(d["x"].numpy()),
            "images/train_x": _to_stored(d["train_x"].numpy()),
            "images/y": d["y"].numpy().astype(np.int16),
            "images/train_y": d["train_y"].numpy().astype(np.int16),
            "images/class_names": np.array(d["class_names"], dtype=str),
            SHIPPED_IMAGES_OF: np.array(self._images_of()),
        }
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, **arrays, **images, **{SHIPPED_KEY: np.array(json.dumps(self._key, sort_keys=True))})
        os.replace(tmp, path)
        return path

    def embedding(self, feature_set: str):
        """The openTSNE map of `feature_set` that can place new points (rebuilt from the cached coordinates once)."""
        from ..analysis.clustering import tsne_from_coordinates

        maps = self.result.latent_maps
        if feature_set not in maps:
            raise ValueError(f"Unknown feature set {feature_set!r}; choose one of {list(maps)}.")
        with self._lock:
            if feature_set not in self._embeddings:
                m = maps[feature_set]
                self._embeddings[feature_set] = tsne_from_coordinates(
                    m["features"], m["coordinates"], seed=self.settings.seed
                )
            return self._embeddings[feature_set]


def _to_stored(pixels: np.ndarray) -> np.ndarray:
    """Pixels in [0, 1] as stored: 8-bit when that is exact (images decoded from 8-bit files), else as they are."""
    levels = np.rint(pixels * 255)
    if levels.min() >= 0 and levels.max() <= 255:
        eight_bit = levels.astype(np.uint8)
        if np.array_equal(_from_stored(eight_bit), pixels):
            return eight_bit
    return pixels


def _from_stored(pixels: np.ndarray) -> np.ndarray:
    return pixels.astype(np.float32) / 255 if pixels.dtype == np.uint8 else pixels


def _add_placement_features(result, models: dict, data: dict) -> None:
    """The features a picture is placed with (its t-SNE position, its nearest training images), computed again for a
    shipped analysis: every placeable feature set of the analysed and the training images."""
    from ..analysis.latents import extract_feature_sets
    from ..registry import kind_of, placeable_features

    keys = [k for k in placeable_features([kind_of(m) for m in models.values()]) if k in result.latent_maps]
    for name, images in (("features", data["x"]), ("train_features", data["train_x"])):
        for key, values in extract_feature_sets(models, images, keys).items():
            result.latent_maps[key][name] = values
