"""The app's model side, without gradio: one set of models on one dataset profile (`mae_hf.profiles`), loaded in a
background thread while the page is served, the dataset analysis once they are, and the computation behind every
handler. Methods take what the page sends (a picture as a checked file path, bytes, an array or a Sketchpad value; the
settings) and return images (uint8 arrays), Markdown tables and text; a request that cannot be answered raises
`AppError`.

torch, transformers and the rest of `mae_hf` are imported by the loading thread, not when this module is imported,
so `python app.py` builds and serves its page first.
"""

import logging
import os
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from .background import AnalysisSettings, BackgroundAnalysis
from .views import (
    DISPLAY_SCALE,
    attention_figures,
    attention_summary,
    dataset_views,
    latent_map_images,
    model_summary,
    reconstruct_views,
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
    The models (`{kind name: folder or Hub id}`, loaded in a daemon thread by `start`; methods that need them wait),
    the dataset profile their pictures follow (default: from their configs, `mae_hf.profiles`) and the dataset
    analysis.

    Requests run concurrently on the one pair of models, with no lock: every model call takes its mask ratio and its
    noise as arguments (`mae_hf.mae.forward_mae`), so a request only reads the models (eval mode, eager attention,
    as `mae_hf.loading` loads them) and never writes to them. The Reconstruct tab's requests, the most frequent, run
    in a pool of worker processes when one is given (`mae_hf.app.workers`: Python holds the GIL for most of a
    request, so threads of one process take turns). `ModelService.loaded(models)` wraps models that are already
    loaded (tests, notebooks).

    Args:
        sources: `{kind name: folder or Hub id}`, e.g. `{"dae": ..., "mae": ...}`. profile: a `DatasetProfile`
            (default `"digits"`). analysis: `AnalysisSettings` (default from the environment), or False for none.
            shipped: the analysis shipped with these models (`BackgroundAnalysis.write_shipped`), used when it
            belongs to them (`MAE_HF_APP_ANALYSIS` overrides it). torch_threads: torch's intra-op threads (the app uses
            1: a request's threads would fight the other requests' for the cores). pool: a `workers.RequestPool`
            started with these sources: `reconstruct` runs in its worker processes once they are ready (in this
            process until then, or without one).
    """

    def __init__(
        self,
        sources: dict,
        profile=None,
        analysis: "AnalysisSettings | bool | None" = None,
        torch_threads: int | None = 1,
        shipped: str | None = None,
        pool=None,
    ):
        from ..profiles import profile_for

        self.sources = {name: str(source) for name, source in sources.items()}
        self.profile = profile or profile_for("digits")
        self.shipped = shipped
        self.torch_threads = torch_threads
        self.pool = pool
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
    def loaded(cls, models, analysis: "AnalysisSettings | bool | None" = None, profile=None) -> "ModelService":
        """Wrap `LoadedModels` that are already loaded (tests, notebooks); the profile defaults to their configs'."""
        if profile is None:
            from ..profiles import profile_of_config

            profile = profile_of_config(next(iter(models.models.values())).config.to_dict())
        service = cls(models.sources, profile, analysis, torch_threads=None)
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
                models = load_models(self.sources)
                models.check_compatible(self.profile.image_size, self.profile.num_channels)
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
        for source in self.sources.values():
            path = Path(source).expanduser()
            if path.exists():
                message = message.replace(str(path.resolve()), path.name).replace(source, path.name)
        return message

    def _start_analysis(self) -> None:
        if self._analysis_arg is False:
            self.analysis_error = "The dataset analysis is switched off."
            return
        try:
            if isinstance(self._analysis_arg, AnalysisSettings):
                settings = self._analysis_arg
            elif self.profile.dataset is None:
                raise ValueError(
                    f"The {self.profile.title} profile names no dataset to analyse; set MAE_HF_APP_DATASET."
                )
            else:
                shipped = os.environ.get("MAE_HF_APP_ANALYSIS") or self.shipped
                settings = AnalysisSettings.from_env(dataset=self.profile.dataset, shipped=shipped)
        except ValueError as err:  # MAE_HF_APP_N=... that makes no sense: shown in the tabs, the models still serve
            self.analysis_error = str(err)
            logger.error("The dataset analysis cannot run: %s", err)
            return
        self.analysis = BackgroundAnalysis(self.models.models, settings).start()

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
                f"Draw, upload or pick a {self.profile.noun} meanwhile: it is reconstructed as soon as they are ready."
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
                "message": a.status(self.profile.nouns),
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

    # -- the current picture ------------------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """The models' kind names, in order (known before they are loaded)."""
        return list(self.sources)

    def digit(self, image) -> np.ndarray:
        """Any picture (checked path, bytes, array, Sketchpad value) → the model input as the profile prepares it:
        uint8, (H, W) for one channel, (H, W, 3) for three."""
        from ..digits import DigitImageError

        size = self.profile.image_size or self._image_size()
        try:
            prepared = self.profile.prepare(image, size, self.profile.num_channels)  # (C, H, W)
        except DigitImageError as err:
            raise AppError(str(err), "Cannot use this image") from err
        return to_uint8(prepared[0] if prepared.shape[0] == 1 else prepared.transpose(1, 2, 0))

    def _image_size(self) -> int:
        return next(iter(self.wait().models.values())).config.image_size

    def _digit_tensor(self, image):
        self.wait()  # nothing heavy is imported while the models load (see `_load`)
        import torch

        if image is None:
            raise AppError(
                f"There is no {self.profile.noun} yet: draw, upload or pick one on the Reconstruct tab.",
                f"No {self.profile.noun}",
            )
        pixels = self.digit(image).astype(np.float32) / 255.0  # (H, W) or (H, W, 3)
        pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)  # (C, H, W)
        return torch.from_numpy(np.ascontiguousarray(pixels))[None]  # (1, C, H, W)

    def reconstruct_by_model(
        self, image, mask_ratio: float = 0.75, noise_factor: float = 0.5, seed: int = 0, corruption: str = "own"
    ) -> tuple[dict[str, dict[str, np.ndarray]], str]:
        """
        Corrupt the picture and reconstruct it with every model (`mae_hf.comparison.compare_reconstructions`).

        Returns: `{model: {"input": its input (hidden patches in blue), "reconstruction": its reconstruction, and for
        a model that masks its own input "pasted": the visible patches pasted back}}` (`reconstruct_slots`; each
        enlarged `DISPLAY_SCALE`×), and the PSNR/SSIM table (Markdown).
        """
        x = self._digit_tensor(image)
        models = self.wait()
        settings = {
            "mask_ratio": float(mask_ratio),
            "noise_factor": float(noise_factor),
            "seed": int(seed or 0),
            "corruption": corruption,
        }
        try:
            if self.pool is not None and self.pool.serves(self.sources):
                try:
                    return self.pool.reconstruct(self.sources, x, **settings)
                except BrokenProcessPool as err:
                    logger.error("A request worker died (%s); requests now run in the app's process", err)
                    self.pool = None
            return reconstruct_views(models.models, x, **settings)
        except (ValueError, TypeError) as err:
            raise AppError(str(err), "Invalid setting") from err

    def reconstruct(
        self, image, mask_ratio: float = 0.75, noise_factor: float = 0.5, seed: int = 0, corruption: str = "own"
    ) -> tuple:
        """`reconstruct_by_model` in the `/reconstruct` endpoint's order: each model's input, reconstruction (and
        pasted patches), then the PSNR/SSIM table."""
        shown, table = self.reconstruct_by_model(image, mask_ratio, noise_factor, seed, corruption)
        return (*(picture for images in shown.values() for picture in images.values()), table)

    def attention(self, image, mask_ratio: float = 0.75, seed: int = 0, corruption: str = "own") -> tuple:
        """The attending model's CLS attention and rollout (masking off and under the Reconstruct tab's mask for this
        seed) and every model's saliency: the two attention figures, the overlay row and a Markdown summary."""
        x = self._digit_tensor(image)
        models = self.wait()
        from ..analysis.explanation import explain_digit

        ratio = 0.0 if corruption == "noise" else float(mask_ratio)
        try:
            maps = explain_digit(models.models, x, ratio, int(seed or 0))
        except ValueError as err:
            raise AppError(str(err), "Invalid setting") from err
        return (*attention_figures(x[0], maps), attention_summary(maps, ratio))

    def latent_space(self, image=None, second: str | None = None) -> tuple:
        """
        Two t-SNE maps of the test images by class, the first model's features and `second` (another placeable
        feature set), the picture placed into both when given, its nearest training images, and the placement,
        radius and measure tables (Markdown). Until the dataset analysis is ready: its status and Nones.
        """
        from ..registry import feature_label

        status = self.analysis_status()
        if not status["ready"]:
            return status["message"], None, None, None, None, None, None
        first, others = latent_choices(self.names)
        second = second or others[0]
        if second not in others:
            raise AppError(f"The second map takes one of {others}, got {second!r}.", "Invalid setting")
        from ..analysis.clustering import place_digit
        from ..analysis.latents import extract_feature_sets
        from ..comparison import to_display
        from ..tables import PLACEMENT_HEADERS, markdown_table

        a, keys, placements = self.analysis, (first, second), {}
        if image is not None:
            x = self._digit_tensor(image)
            models = self.wait()
            feats = extract_feature_sets(models.models, x, keys)
            for k in keys:
                placements[k] = place_digit(a.embedding(k), feats[k], a.result.latent_maps[k]["train_features"])
        names = a.result.class_names
        gallery, rows = [], []
        for k, p in placements.items():
            labels = a.train_y[p["neighbours"]]
            common = int(np.bincount(labels).argmax())
            rows.append(
                [
                    feature_label(k),
                    f"{p['coordinates'][0]:.2f}",
                    f"{p['coordinates'][1]:.2f}",
                    " ".join(_class_name(names, c) for c in labels),
                    _class_name(names, common),
                ]
            )
            # one row per feature set, nearest first: the caption is the class and the distance
            gallery += [
                (to_display(a.train_x[i], DISPLAY_SCALE), f"{_class_name(names, a.train_y[i])}, {d:.2f}")
                for i, d in zip(p["neighbours"], p["distances"])
            ]
        placement = (
            markdown_table(PLACEMENT_HEADERS, rows)
            if rows
            else f"*Draw, upload or pick a {self.profile.noun} on the Reconstruct tab to place it in the maps.*"
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
                self._views = dataset_views(self.analysis.result, self.profile.nouns)
            return self._views

    def metrics(self) -> tuple:
        """Status, test-set PSNR and SSIM histograms under both corruptions, the summary table (Nones until ready)."""
        status = self.analysis_status()
        if not status["ready"]:
            return status["message"], None, None, None
        v = self._dataset_views()
        return status["message"], v["psnr"], v["ssim"], v["metrics_table"]

    def weights(self) -> tuple:
        """Status, per-layer weight histograms of every model (trained vs init), the near-zero table."""
        status = self.analysis_status()
        if not status["ready"]:
            return status["message"], *[None] * len(self.names), None
        v = self._dataset_views()
        return status["message"], *(v[f"weights_{name}"] for name in self.names), v["weights_table"]

    def verdicts(self) -> str:
        """The study's claims H1–H3 with the verdict under each measure (Markdown; the status until ready)."""
        status = self.analysis_status()
        return verdicts_markdown(self.analysis.result) if status["ready"] else status["message"]

    def model_summary(self) -> str:
        """Where the models came from, their size and cards (the loading status until they are there)."""
        return model_summary(self.models) if self.ready else self.status()["message"]


def latent_choices(names: list[str]) -> tuple[str, list[str]]:
    """The Latent tab's maps for models of kinds `names`: the first model's first placeable feature set, and the
    choices for the second map (every other placeable set, raw pixels last)."""
    from ..registry import MODEL_KINDS, placeable_features

    sets = list(placeable_features([MODEL_KINDS[n] for n in names if n in MODEL_KINDS]))
    return sets[0], sets[1:]


def _class_name(names, label) -> str:
    i = int(label)
    return str(names[i]) if i < len(names) else str(i)
