"""The app's model side, without gradio: both models, loaded in a background thread while the page is served, the
dataset analysis once they are, and the computation behind every handler. Methods take what the page sends (a
digit as a checked file path, bytes, an array or a Sketchpad value; the settings) and return images (uint8 arrays),
table rows and Markdown; a request that cannot be answered raises `AppError`.

torch, transformers and the rest of `mae_hf` are imported by the loading thread, not when this module is imported,
so `python app.py` builds and serves its page first.
"""

import logging
import threading
import time
from pathlib import Path

import numpy as np

from .analysis import AnalysisSettings, BackgroundAnalysis
from .views import (
    DISPLAY_SCALE,
    attention_figures,
    attention_summary,
    dataset_views,
    latent_map_images,
    model_summary,
    to_uint8,
    verdicts_markdown,
)

logger = logging.getLogger(__name__)

__all__ = ["AppError", "ModelService"]


class AppError(Exception):
    """A request the app cannot answer, with a message for the visitor and a `title`."""

    def __init__(self, message: str, title: str = "Error"):
        super().__init__(message)
        self.title = title


class ModelService:
    """
    Both models (loaded in a daemon thread by `start`; methods that need them wait) and the dataset analysis.

    Requests run concurrently on the one pair of models, with no lock: every model call takes its mask ratio and its
    noise as arguments (`mae_hf.mae.forward_mae`), so a request only reads the models (eval mode, eager attention,
    as `mae_hf.loading` loads them) and never writes to them. `ModelService.loaded(models)` wraps models that are
    already loaded (tests, notebooks).

    Args:
        dae, mae: folders or Hub ids. analysis: `AnalysisSettings` (default from the environment), or False for
            none. torch_threads: torch's intra-op threads (the app uses 1: a request's threads would fight the
            other requests' for the cores).
    """

    def __init__(
        self, dae: str, mae: str, analysis: "AnalysisSettings | bool | None" = None, torch_threads: int | None = 1
    ):
        self.dae_source, self.mae_source = str(dae), str(mae)
        self.torch_threads = torch_threads
        self._analysis_arg = analysis
        self.analysis: BackgroundAnalysis | None = None
        self.analysis_error: str | None = None
        self.models = None
        self.error: str | None = None
        self.seconds: float | None = None
        self._started: float | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._views = None
        self._views_lock = threading.Lock()

    @classmethod
    def loaded(cls, models, analysis: "AnalysisSettings | bool | None" = None) -> "ModelService":
        service = cls(models.dae_source, models.mae_source, analysis, torch_threads=None)
        service.models = models
        service._done.set()
        service._start_analysis()
        return service

    # -- state -----------------------------------------------------------------------------------------------------

    def start(self) -> "ModelService":
        """Load the models in a daemon thread (once), then start the dataset analysis; returns self at once."""
        if self._thread is None and not self._done.is_set():
            self._started = time.perf_counter()
            self._thread = threading.Thread(target=self._load, name="mae_hf-models", daemon=True)
            self._thread.start()
        return self

    def _load(self) -> None:
        try:
            import torch

            from ..loading import ModelLoadError, load_models

            if self.torch_threads is not None:
                torch.set_num_threads(self.torch_threads)
            try:
                models = load_models(self.dae_source, self.mae_source)
                models.check_compatible()
                # What the handlers import, imported here once: transformers' lazy imports are not safe to run from
                # several threads at once, and the handlers import nothing heavy before the models are loaded.
                from .. import comparison  # noqa: F401
                from ..analysis import clustering, explanation, latents  # noqa: F401

                self.models = models
            except ModelLoadError as err:
                logger.error("%s", err)
                self.error = self._public(str(err))
        except Exception as err:  # noqa: BLE001 - shown in the page and by every handler; the app keeps serving
            logger.exception("Loading the models failed")
            self.error = f"{type(err).__name__}: {err}"
        self.seconds = time.perf_counter() - self._started
        if self.error is None:
            logger.info("Models loaded in %.1f s", self.seconds)
        self._done.set()
        if self.error is None:
            self._start_analysis()

    def _public(self, message: str) -> str:
        """A message for the page: the model folders by their names, never their server paths."""
        for source in (self.dae_source, self.mae_source):
            path = Path(source).expanduser()
            if path.exists():
                message = message.replace(str(path.resolve()), path.name).replace(source, path.name)
        return message

    def _start_analysis(self) -> None:
        if self._analysis_arg is False:
            self.analysis_error = "The dataset analysis is switched off."
            return
        try:
            settings = (
                self._analysis_arg if isinstance(self._analysis_arg, AnalysisSettings) else AnalysisSettings.from_env()
            )
        except ValueError as err:  # MAE_HF_APP_N=... that makes no sense: shown in the tabs, the models still serve
            self.analysis_error = str(err)
            logger.error("The dataset analysis cannot run: %s", err)
            return
        self.analysis = BackgroundAnalysis(self.models.dae, self.models.mae, settings).start()

    @property
    def ready(self) -> bool:
        return self._done.is_set() and self.error is None

    def status(self) -> dict:
        """The models: `{"ready", "failed", "message"}` (Markdown), without waiting."""
        if self.ready:
            message = "Models loaded." if self.seconds is None else f"Models loaded in {self.seconds:.1f} s."
        elif self._done.is_set():
            message = f"**The models could not be loaded.** {self.error}"
        else:
            waited = "" if self._started is None else f", {time.perf_counter() - self._started:.0f} s so far"
            message = (
                f"**Loading the models** (importing torch and transformers, reading the weights{waited}). "
                "Draw, upload or pick a digit meanwhile: it is reconstructed as soon as they are ready."
            )
        return {"ready": self.ready, "failed": self._done.is_set() and not self.ready, "message": message}

    def wait(self, timeout: float = 600.0):
        """The loaded models, waiting while they load (`AppError` if they could not be loaded)."""
        if not self._done.wait(timeout):
            raise AppError(f"The models are still loading after {timeout:.0f} s; try again later.", "Models not loaded")
        if self.error is not None:
            raise AppError(self.error, "The models could not be loaded")
        return self.models

    def analysis_status(self) -> dict:
        """The dataset analysis: `{"ready", "failed", "progress" (0–1), "stage", "message"}`."""
        a = self.analysis
        if a is not None:
            return {
                "ready": a.ready,
                "failed": a.failed,
                "progress": round(a.progress(), 3),
                "stage": a.stage,
                "message": a.status(),
            }
        failed = self.analysis_error is not None or (self._done.is_set() and not self.ready)
        message = (
            f"**The dataset analysis cannot run:** {self.analysis_error}"
            if self.analysis_error
            else "**The models could not be loaded**, so there is no dataset analysis."
            if failed
            else "**Loading the models**; the dataset analysis starts as soon as they are loaded. This tab fills "
            "in by itself."
        )
        return {
            "ready": False,
            "failed": failed,
            "progress": 0.0,
            "stage": "failed" if failed else "loading the models",
            "message": message,
        }

    # -- the current digit -----------------------------------------------------------------------------------------

    def digit(self, image) -> np.ndarray:
        """Any picture of a digit (checked path, bytes, array, Sketchpad value) → the uint8 (28, 28) model input."""
        from ..digits import DigitImageError, preprocess_digit

        try:
            return to_uint8(preprocess_digit(image))
        except DigitImageError as err:
            raise AppError(str(err), "Cannot use this image") from err

    def _digit_tensor(self, image):
        self.wait()  # nothing heavy is imported while the models load (see `_load`)
        import torch

        if image is None:
            raise AppError("There is no digit yet: draw, upload or pick one on the Reconstruct tab.", "No digit")
        return torch.from_numpy(self.digit(image).astype(np.float32) / 255.0)[None, None]  # (1, 1, 28, 28)

    def reconstruct(
        self, image, mask_ratio: float = 0.75, noise_factor: float = 0.5, seed: int = 0, corruption: str = "own"
    ) -> tuple:
        """
        Corrupt the digit and reconstruct it with both models (`mae_hf.comparison.compare_reconstructions`).

        Returns: the MAE's input, reconstruction and pasted image, the DAE's input and reconstruction (each enlarged
        `DISPLAY_SCALE`×, hidden patches in blue) and the PSNR/SSIM table (Markdown).
        """
        x = self._digit_tensor(image)
        models = self.wait()
        from ..comparison import compare_reconstructions, metrics_table, to_display
        from ..report.tables import markdown_table

        try:
            r = compare_reconstructions(
                models.dae,
                models.mae,
                x,
                mask_ratio=float(mask_ratio),
                noise_factor=float(noise_factor),
                seed=int(seed or 0),
                corruption=corruption,
            )
        except (ValueError, TypeError) as err:
            raise AppError(str(err), "Invalid setting") from err

        def show(img, mask=None):
            return to_display(img, DISPLAY_SCALE, mask)

        return (
            show(r.mae_input, r.mae_pixel_mask),
            show(r.mae_reconstruction),
            show(r.mae_pasted),
            show(r.dae_input, r.dae_pixel_mask),
            show(r.dae_reconstruction),
            markdown_table(*metrics_table(r.metrics)),
        )

    def attention(self, image, mask_ratio: float = 0.75, seed: int = 0, corruption: str = "own") -> tuple:
        """The digit's MAE CLS attention and rollout (masking off and under the Reconstruct tab's mask for this seed)
        and both saliencies: the two attention figures, the overlay row and a Markdown summary."""
        x = self._digit_tensor(image)
        models = self.wait()
        from ..analysis.explanation import explain_digit

        ratio = 0.0 if corruption == "noise" else float(mask_ratio)
        try:
            maps = explain_digit(models.dae, models.mae, x, ratio, int(seed or 0))
        except ValueError as err:
            raise AppError(str(err), "Invalid setting") from err
        return (*attention_figures(x[0], maps), attention_summary(maps, ratio))

    def latent_space(self, image=None, mae_features: str = "mae_cls") -> tuple:
        """
        The t-SNE maps of the DAE bottleneck and of `mae_features` (test digits by class), the digit placed into
        both when given, its nearest training digits, and the placement, radius and measure tables (Markdown).
        Until the dataset analysis is ready: its status and Nones.
        """
        from ..labels import PLACEABLE_FEATURES

        status = self.analysis_status()
        if not status["ready"]:
            return status["message"], None, None, None, None, None, None
        if mae_features not in PLACEABLE_FEATURES or mae_features == "dae":
            raise AppError(
                f"`mae_features` must be one of {[f for f in PLACEABLE_FEATURES if f != 'dae']}.", "Invalid setting"
            )
        from ..analysis.clustering import place_digit
        from ..analysis.latents import extract_feature_sets
        from ..comparison import to_display
        from ..labels import FEATURE_LABELS
        from ..report.tables import markdown_table

        a, keys, placements = self.analysis, ("dae", mae_features), {}
        if image is not None:
            x = self._digit_tensor(image)
            models = self.wait()
            feats = extract_feature_sets(models.dae, models.mae, x, keys)
            for k in keys:
                placements[k] = place_digit(a.embedding(k), feats[k], a.result.latent_maps[k]["train_features"])
        gallery, rows = [], []
        for k, p in placements.items():
            labels = a.train_y[p["neighbours"]]
            rows.append(
                [
                    FEATURE_LABELS[k],
                    f"{p['coordinates'][0]:.2f}",
                    f"{p['coordinates'][1]:.2f}",
                    " ".join(str(int(c)) for c in labels),
                    str(int(np.bincount(labels).argmax())),
                ]
            )
            # one row per feature set, nearest first: the caption is the label and the distance
            gallery += [
                (to_display(a.train_x[i], DISPLAY_SCALE), f"{a.train_y[i]}, {d:.2f}")
                for i, d in zip(p["neighbours"], p["distances"])
            ]
        placement = (
            markdown_table(["Features", "t-SNE x", "t-SNE y", "Neighbours' labels", "Most common label"], rows)
            if rows
            else "*Draw, upload or pick a digit on the Reconstruct tab to place it in the maps.*"
        )
        v = self._dataset_views()
        return (
            status["message"],
            *latent_map_images(a.result, keys, placements),
            gallery or None,
            placement,
            v["radius_table"],
            v["measures_table"],
        )

    # -- the test set and the models -------------------------------------------------------------------------------

    def _dataset_views(self) -> dict:
        with self._views_lock:
            if self._views is None:
                self._views = dataset_views(self.analysis.result)
            return self._views

    def metrics(self) -> tuple:
        """Status, test-set PSNR and SSIM histograms under both corruptions, the summary table (Nones until ready)."""
        status = self.analysis_status()
        if not status["ready"]:
            return status["message"], None, None, None
        v = self._dataset_views()
        return status["message"], v["psnr"], v["ssim"], v["metrics_table"]

    def weights(self) -> tuple:
        """Status, per-layer weight histograms of both models (trained vs init), the near-zero table."""
        status = self.analysis_status()
        if not status["ready"]:
            return status["message"], None, None, None
        v = self._dataset_views()
        return status["message"], v["weights_dae"], v["weights_mae"], v["weights_table"]

    def verdicts(self) -> str:
        """The study's claims H1–H3 with the verdict under each measure (Markdown; the status until ready)."""
        status = self.analysis_status()
        return verdicts_markdown(self.analysis.result) if status["ready"] else status["message"]

    def model_summary(self) -> str:
        """Where the models came from, their size and cards (the loading status until they are there)."""
        return model_summary(self.models) if self.ready else self.status()["message"]
