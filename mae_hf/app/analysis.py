"""The app's dataset analysis: the report's `run_analysis` on the test digits, once, in a background thread, beside
the requests (both only read the models), with its progress readable at any time. Its `AnalysisResult` is cached in the
report's `AnalysisCache`, so a second start with the same models and data is ready within a second or two."""

import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field

logger = logging.getLogger(__name__)

__all__ = ["AnalysisSettings", "BackgroundAnalysis"]

RESULT_VERSION = 1


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
            default `~/.cache/mae_hf`); None disables it.
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

    @classmethod
    def from_env(cls, **overrides) -> "AnalysisSettings":
        """Defaults, then `MAE_HF_APP_N`, `MAE_HF_APP_N_TRAIN`, `MAE_HF_APP_DATASET`, then `overrides`."""
        s = cls(
            n=_env_int("MAE_HF_APP_N", cls.n),
            n_train=_env_int("MAE_HF_APP_N_TRAIN", cls.n_train),
            dataset=os.environ.get("MAE_HF_APP_DATASET", cls.dataset),
        )
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

    def __init__(self, dae, mae, settings: AnalysisSettings | None = None):
        self.settings = settings or AnalysisSettings.from_env()
        self._models = (dae, mae)
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.error: str | None = None
        self.stage, self.stage_index, self.n_stages = "waiting to start", 0, 1
        self.seconds: float | None = None
        self.from_cache = False
        self.result = None
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

    def status(self) -> str:
        """One line of Markdown: what is being computed, that it failed and why, or how it was done."""
        s = self.settings
        if self.ready:
            how = "from the cache" if self.from_cache else f"in {self.seconds:.0f} s"
            return (
                f"Computed on the first {s.n:,} `{s.split}` digits of `{s.dataset}` (classifiers and neighbours: "
                f"{len(self.train_x):,} training digits), {how}."
            )
        if self.failed:
            return f"**The dataset analysis failed:** {self.error}"
        return (
            f"**Computing the dataset analysis in the background** ({s.n:,} test digits, {s.n_train:,} training "
            f"digits): {self.stage}, step {self.stage_index + 1} of {self.n_stages}. This tab fills in by "
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
            logger.info(
                "Dataset analysis ready in %.1f s (%s)", self.seconds, "cache" if self.from_cache else "computed"
            )
        except Exception as err:  # noqa: BLE001 - shown in the tabs; the app keeps serving
            logger.exception("The dataset analysis failed")
            self.error = f"{type(err).__name__}: {err}"
        finally:
            self._done.set()

    def _set_stage(self, name: str, index: int, n_stages: int) -> None:
        """Stage 0 loads the data; then the report pipeline's stages, as it announces them."""
        self.stage, self.stage_index, self.n_stages = name.replace("_", " "), index, n_stages

    def _compute(self) -> None:
        from ..report import (
            STAGES,
            AnalysisCache,
            AnalysisResult,
            ReportSettings,
            array_fingerprint,
            load_report_data,
            model_fingerprint,
            run_analysis,
        )

        s = self.settings
        dae, mae = self._models
        cache = AnalysisCache(s.cache_dir)
        self._set_stage("loading the data", 0, 1 + len(STAGES))
        data = load_report_data(s.dataset, s.split, s.n, s.n_train, dae, mae, cache)
        settings = ReportSettings(n=s.n, n_train=s.n_train, seed=s.seed, n_attention=s.n_attention, scorecard=False)
        key = [
            RESULT_VERSION,
            model_fingerprint(dae),
            model_fingerprint(mae),
            array_fingerprint(data["x"], data["train_x"]),
            asdict(settings),
        ]
        computed = []

        def compute():
            computed.append(True)
            return run_analysis(
                dae, mae, data, settings, cache, on_stage=lambda name, i, n: self._set_stage(name, i + 1, n + 1)
            ).to_arrays()

        self.result = AnalysisResult.from_arrays(cache.arrays("app-analysis", key, compute))
        self.from_cache = not computed
        self.train_x, self.train_y = data["train_x"], data["train_y"].numpy()

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
