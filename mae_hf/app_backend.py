"""The app's model side, without gradio: both models, the dataset analysis, and the computation behind every
handler of `app.py`, returning images (uint8 arrays), tables (rows) and Markdown.

`DigitLab` runs in the app's process (tests, notebooks: `app.build_demo(models)`), or in a process of its own:
`python app.py` starts `python -m mae_hf.app_backend` before it imports gradio, so importing torch and
transformers here (most of a cold start) runs on the other CPU core while the page is built and served. The
process answers `DigitLab.call` requests over a `multiprocessing.connection` socket (`serve`); `app.ModelProcess`
is the other end.
"""

import argparse
import logging
import os
import sys
import threading
import time
from multiprocessing.connection import Listener
from pathlib import Path

import numpy as np

from .explorer import BackgroundWork
from .loading import LoadedModels, ModelLoadError, count_parameters, load_models

logger = logging.getLogger("mae_hf.app_backend")  # also when run as __main__

DISPLAY_SCALE = 4  # 28×28 → 112×112 by nearest neighbour; the browser enlarges further with crisp pixels
FEATURE_NAMES = {"dae": "DAE bottleneck", "mae_cls": "MAE CLS token", "mae_mean": "MAE mean patch token",
                 "raw_pixels": "raw pixels", "mae_masked_flat": "MAE masked, flattened (study)"}
AUTHKEY_ENV = "MAE_HF_BACKEND_AUTHKEY"


class AppError(Exception):
    """A request the app cannot answer, with a message for the visitor and a `title` (the app shows both)."""

    def __init__(self, message: str, title: str = "Error"):
        super().__init__(message)
        self.title = title


def to_uint8(digit: np.ndarray) -> np.ndarray:
    """[0, 1] floats → uint8, the form the model-input image is stored in (a lossless PNG)."""
    return np.round(np.clip(digit, 0.0, 1.0) * 255).astype(np.uint8)


# --- figures and tables for the analysis tabs (arrays from mae_hf.explorer → images and rows) ---------------------


def figure_image(fig) -> np.ndarray:
    """A matplotlib Figure → an RGB uint8 array (the figure is closed)."""
    import matplotlib.pyplot as plt

    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return rgb


def _num(value, digits: int = 3) -> str:
    if isinstance(value, str):
        return value  # "inf" / "nan" as stored in the JSON metrics
    return "—" if value is None else f"{value:.{digits}f}"


def attention_figures(image, maps: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CLS-attention figures (masking off / under the mask) and the overlay row, as images."""
    from . import plotting
    from .analysis.attention import upsample_grid

    p = image.shape[-1] // maps["rollout"].shape[-1]
    plain, _ = plotting.plot_cls_attention(maps["cls_maps"], image=image, rollout=maps["rollout"])
    masked, _ = plotting.plot_cls_attention(maps["cls_maps_masked"], image=maps["masked_input"],
                                            rollout=maps["rollout_masked"])
    heats = {
        "rollout": upsample_grid(maps["rollout"], p)[None],
        "rollout, masked": upsample_grid(maps["rollout_masked"], p)[None],
        "DAE saliency": maps["dae_saliency"][None],
        "MAE saliency": maps["mae_saliency"][None],
        "MAE saliency, masked": maps["mae_saliency_masked"][None],
    }
    mask = maps["pixel_mask"][None]
    row, _ = plot_overlays_side_by_side(image, heats, {"rollout, masked": mask, "MAE saliency, masked": mask})
    return figure_image(plain), figure_image(masked), figure_image(row)


def plot_overlays_side_by_side(image, heats: dict, masks: dict):
    """One panel per heat map over the same digit (`plotting.plot_overlay` each)."""
    import matplotlib.pyplot as plt

    from . import plotting

    fig, axes = plt.subplots(1, len(heats), figsize=(2.3 * len(heats), 2.6))
    for ax, (label, heat) in zip(axes, heats.items()):
        m = masks.get(label)
        plotting.plot_overlay(image, heat[0], title=label, mask=None if m is None else m[0], ax=ax)
    fig.tight_layout()
    return fig, axes


def attention_summary(maps: dict, mask_ratio: float) -> str:
    """Markdown: where the rollout and the saliencies put their weight, in numbers."""
    g = maps["rollout"].shape[-1]
    top = np.unravel_index(np.nanargmax(maps["rollout"]), maps["rollout"].shape)
    masked_patches = int(maps["pixel_mask"].sum() / (maps["pixel_mask"].shape[0] // g) ** 2)
    leak = float((maps["mae_saliency_masked"] * maps["pixel_mask"]).max())
    return (
        f"Rollout puts the most weight on patch (row {top[0]}, column {top[1]}) of the {g}×{g} grid "
        f"({np.nanmax(maps['rollout']):.1%} of the total). Under the mask ({mask_ratio:.0%}: {masked_patches} of "
        f"{g * g} patches hidden, grey) the MAE's saliency inside hidden patches is {leak:.3g}: the encoder never "
        "sees them. Each panel is scaled to its own maximum."
    )


def latent_maps_figure(maps: dict, summary, keys: tuple[str, ...], placements: dict):
    """The t-SNE maps of `keys` side by side, the placed digit as a star."""
    import matplotlib.pyplot as plt

    from . import plotting

    lm = summary.metrics["latents"]
    fig, axes = plt.subplots(1, len(keys), figsize=(5.2 * len(keys), 5.0))
    for ax, k in zip(np.atleast_1d(axes), keys):
        p = placements.get(k)
        plotting.plot_tsne(maps[k]["coordinates"], summary.y, ax=ax,
                           title=f"{FEATURE_NAMES[k]} — silhouette {_num(lm[k]['silhouette'], 2)}, "
                                 f"kNN {_num(lm[k]['knn_accuracy'], 2)}",
                           highlight=None if p is None else p["coordinates"][None])
    fig.tight_layout()
    return fig


def radius_table(summary) -> list[list[str]]:
    """Mean per-class radius of each feature set in t-SNE space, the original space, and scale-free."""
    lm = summary.metrics["latents"]
    return [[FEATURE_NAMES.get(k, k), _num(v["tsne_radius"]["mean"], 2), _num(v["original_radius"]["mean"], 2),
             _num(v["scale_free_radius"]["mean"]), _num(v["tsne_scale_free_radius"]["mean"])] for k, v in lm.items()]


def measures_table(summary) -> list[list[str]]:
    """The honest measures of each feature set, raw pixels as the baseline row."""
    lm = summary.metrics["latents"]
    return [[FEATURE_NAMES.get(k, k), str(v["dim"]), _num(v["silhouette"]), _num(v["trustworthiness"]),
             _num(v["knn_accuracy"]), _num(v["linear_probe_accuracy"])] for k, v in lm.items()]


def _mean_std(summary: dict, digits: int = 2) -> str:
    return f"{_num(summary['mean'], digits)} ± {_num(summary['std'], digits)}"


def dataset_views(summary) -> dict:
    """Every dataset-level image and table (rendered once, then served to every visitor)."""
    from . import plotting

    rc, wt = summary.metrics["reconstruction"], summary.metrics["weights"]
    views = {}
    for metric, label in (("psnr", "PSNR (dB) on [0, 1]"), ("ssim", "SSIM")):
        fig, _ = plotting.plot_metric_histograms(summary.per_image[metric], label)
        fig.set_size_inches(6.4, 3.6)
        fig.tight_layout()
        views[metric] = figure_image(fig)
    rows = []
    for model in ("mae", "dae"):
        for corruption in ("masking", "noise"):
            c = rc[model][corruption]
            own = (model, corruption) in (("dae", "noise"), ("mae", "masking"))
            rows.append([model.upper(), corruption + (" (own)" if own else " (the other's)"), _mean_std(c["psnr"]),
                         _mean_std(c["ssim"], 3), _mean_std(c["psnr_masked"]) if "psnr_masked" in c else "—",
                         _mean_std(c["psnr_input"])])
    views["metrics_table"] = rows
    for name in ("dae", "mae"):
        h = summary.histograms[name]
        fig, _ = plotting.plot_weight_histograms(h["trained"], h["init"],
                                                 title=f"{name.upper()} weights per layer: trained (filled) vs init (outline)")
        views[f"weights_{name}"] = figure_image(fig)
    views["weights_table"] = [
        [name.upper(), state, f"{wt[name][state]['n_weights']:,}",
         _num(wt[name][state]["near_zero_fraction"]["absolute"], 4), _num(wt[name][state]["near_zero_fraction"]["relative"], 4)]
        for name in ("dae", "mae") for state in ("init", "trained")
    ]
    return views


def verdicts_markdown(summary) -> str:
    """The claims H1–H3, each with the measures, both models' numbers and whether the claim holds under each."""
    out = []
    for key, v in summary.metrics["verdicts"].items():
        n_hold = len(v["holds_under"])
        out += [f"#### {key}: {v['claim']}",
                f"**Holds under {n_hold} of {len(v['measures'])} measures.**",
                "", "| measure | features / corruption | DAE | MAE | the claim says | verdict |", "| --- | --- | --- | --- | --- | --- |"]
        for r in v["measures"]:
            ctx = r.get("features") or r.get("corruption") or ""
            out.append(f"| {r['measure']} | {ctx} | {_num(r['dae'], 4)} | {_num(r['mae'], 4)} | {r['claim']} | "
                       f"{'✅ holds' if r['holds'] else '❌ does not hold'} |")
        out.append("")
    s = summary.metrics["settings"]
    out.append(f"*Computed by the analysis engine (`mae_hf.analysis.verdicts`) on {s['n']} test and {s['n_train']} "
               "train digits; `mae-hf report` writes the full report.*")
    return "\n".join(out)


def model_summary(models: LoadedModels) -> str:
    """Markdown: where each model came from, its size and shape, and its card when the folder has one."""
    dae, mae = models.dae.config, models.mae.config
    lines = [
        "| | loaded from | parameters | architecture |",
        "| --- | --- | --- | --- |",
        f"| DAE | `{models.dae_source}` | {count_parameters(models.dae):,} | conv "
        f"{' → '.join(map(str, [dae.num_channels, *dae.hidden_channels]))}, {dae.kernel_size}×{dae.kernel_size} kernels, "
        f"2×2 max-pool; trained with noise factor {dae.noise_factor} |",
        f"| MAE | `{models.mae_source}` | {count_parameters(models.mae):,} | ViT, {mae.patch_size}×{mae.patch_size} "
        f"patches, width {mae.hidden_size}, {mae.num_hidden_layers} encoder / {mae.decoder_num_hidden_layers} decoder "
        f"layers; trained at mask ratio {mae.mask_ratio} |",
    ]
    for name, source in (("DAE", models.dae_source), ("MAE", models.mae_source)):
        card = Path(source) / "README.md"
        if card.is_file():
            lines += ["", f"<details><summary>{name} model card</summary>\n\n{card.read_text()}\n\n</details>"]
    return "\n".join(lines)


# --- loading -------------------------------------------------------------------------------------------------------


class BackgroundModels(BackgroundWork):
    """
    Both models, loaded in a daemon thread; `get()` waits until they are there.

    `BackgroundModels.loaded(models)` wraps models that are already loaded (tests, notebooks). `torch_threads`:
    torch's intra-op threads, set before loading (the app uses 1: the models are tiny, and a request's threads
    would fight the other requests' for the cores).
    """

    def __init__(self, dae: str | os.PathLike, mae: str | os.PathLike, torch_threads: int | None = None):
        super().__init__()
        self.dae_source, self.mae_source = str(dae), str(mae)
        self.torch_threads = torch_threads
        self.models: LoadedModels | None = None
        self.stage = "waiting to start"
        self.seconds: float | None = None
        self._started: float | None = None
        self._lock = threading.Lock()
        self._callbacks: list = []
        self._thread: threading.Thread | None = None

    @classmethod
    def loaded(cls, models: LoadedModels) -> "BackgroundModels":
        """Already loaded `LoadedModels`, behind the same interface."""
        done = cls(models.dae_source, models.mae_source)
        done.models, done.stage = models, "loaded"
        done._done.set()
        return done

    def status(self) -> str:
        """One line of Markdown: what is being loaded, that loading failed and why, or that the models are there."""
        if self.ready:
            return "Models loaded." if self.seconds is None else f"Models loaded in {self.seconds:.1f} s."
        if self.failed:
            return f"**The models could not be loaded.** {self.error}"
        waited = "" if self._started is None else f", {time.perf_counter() - self._started:.0f} s so far"
        return loading_message(f"{self.stage}{waited}")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until loading is over, loaded or failed (or `timeout` s); True when it is over."""
        return self._done.wait(timeout)

    def when_ready(self, fn) -> None:
        """Call `fn(models)` once the models are loaded (at once when they already are; never if loading fails)."""
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(fn)
                return
        if self.ready:
            fn(self.models)

    def start(self) -> "BackgroundModels":
        """Start loading in a daemon thread (once); returns self."""
        with self._lock:
            if self._thread is None and not self._done.is_set():
                self._started = time.perf_counter()
                self._thread = threading.Thread(target=self._run, name="mae_hf-models", daemon=True)
                self._thread.start()
        return self

    def _run(self) -> None:
        import torch

        models = None
        try:
            if self.torch_threads is not None:
                torch.set_num_threads(self.torch_threads)
            self.stage = "reading the weights"
            try:
                models = load_models(self.dae_source, self.mae_source)
                models.check_compatible()
            except ModelLoadError as err:
                self.error = str(err)
                logger.error("%s", err)
        except Exception as err:  # noqa: BLE001 - shown in the page and by every handler; the app keeps serving
            logger.exception("Loading the models failed")
            self.error = f"{type(err).__name__}: {err}"
        self.seconds = time.perf_counter() - self._started
        with self._lock:
            if self.error is None:
                self.models, self.stage = models, "loaded"
                logger.info("Models loaded in %.1f s", self.seconds)
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks if self.error is None else ():
            try:
                fn(models)
            except Exception:  # noqa: BLE001 - a callback's failure must not hide the models from the handlers
                logger.exception("A callback on the loaded models failed")

    def get(self, timeout: float = 600.0) -> LoadedModels:
        """
        The loaded models, waiting while they load.

        Raises:
            AppError: the models could not be loaded (the message says why), or were not loaded in `timeout` s.
        """
        if not self._done.wait(timeout):
            raise AppError(f"The models are still loading ({self.stage}) after {timeout:.0f} s; try again later.",
                           title="Models not loaded")
        if self.error is not None:
            raise AppError(self.error, title="The models could not be loaded")
        return self.models


def loading_message(stage: str) -> str:
    """The banner while the models load (before the model process answers, `app.ModelProcess` says the same)."""
    return (f"⏳ **Loading the models** ({stage}). Draw, upload or pick a digit meanwhile: it is reconstructed as "
            "soon as they are ready.")


class PendingAnalysis:
    """Stands in for the `BackgroundAnalysis` until the models are loaded (it is made from them), with the same
    `ready` / `failed` / `progress()` / `stage` / `status()`; failed when the models, or the analysis's settings,
    could not be loaded."""

    ready = False

    def __init__(self, loader: BackgroundModels, error: str | None = None):
        self.loader, self.error = loader, error

    @property
    def failed(self) -> bool:
        return self.error is not None or self.loader.failed

    @property
    def stage(self) -> str:
        return "failed" if self.failed else "loading the models"

    def progress(self) -> float:
        return 0.0

    def status(self) -> str:
        if self.error is not None:
            return f"**The dataset analysis cannot run:** {self.error}"
        if self.loader.failed:
            return f"**The models could not be loaded**, so there is no dataset analysis. {self.loader.error}"
        return ("⏳ **Loading the models**; the dataset analysis starts as soon as they are loaded. This tab fills in "
                "by itself.")


# --- the handlers' computation -------------------------------------------------------------------------------------


class DigitLab:
    """
    The computation behind every handler of the app, bound to the models (loaded, or loading in the background:
    methods that need them wait). Methods take what the page sends (a digit as a file path, array or Sketchpad
    value; the settings) and return images, rows and Markdown; a request that cannot be answered raises `AppError`.
    One lock serialises model calls: ViTMAE reads its mask ratio from its (shared) config at forward time, and
    the models are tiny, so serial forwards are fast.

    Args:
        models: `LoadedModels`, or `BackgroundModels` (started or not).
        analysis: the dataset analysis: a `BackgroundAnalysis`, or `ExplorerSettings` (default:
            `ExplorerSettings.from_env()`) for one that is made from the models once they are loaded.
    """

    # What `call` (and so the model process) answers.
    API = ("status", "digit", "reconstruct", "attention", "latent_space", "analysis_status", "metrics", "weights",
           "verdicts", "model_summary")

    def __init__(self, models: "LoadedModels | BackgroundModels", analysis=None):
        self.loader = models if isinstance(models, BackgroundModels) else BackgroundModels.loaded(models)
        self.lock = threading.Lock()
        self._analysis_arg = analysis
        self._analysis = PendingAnalysis(self.loader)
        self._start_analysis = False
        self._busy = 0  # requests being answered by `call`
        self._analysis_started = False
        self._analysis_lock = threading.Lock()
        self._views_lock = threading.Lock()
        self._view_cache: dict | None = None
        self.loader.when_ready(self._make_analysis)

    def call(self, name: str, args: tuple = (), kwargs: dict | None = None) -> tuple:
        """
        Run the method `name` (one of `API`) and say how it went, as plain data (what the model process sends):
        `("ok", result)`, `("user_error", title, message)` for an `AppError`, or `("error", message)` for a
        failure of the app itself (logged here with its traceback).
        """
        if name not in self.API:
            return ("error", f"Unknown request {name!r}; the model process answers {', '.join(self.API)}.")
        with self._analysis_lock:
            self._busy += 1
        try:
            return ("ok", getattr(self, name)(*args, **(kwargs or {})))
        except AppError as err:
            return ("user_error", err.title, str(err))
        except Exception as err:  # noqa: BLE001 - reported to the page; the app keeps serving
            logger.exception("%s failed", name)
            return ("error", f"{type(err).__name__}: {err}")
        finally:
            with self._analysis_lock:
                self._busy -= 1
            self._maybe_start_analysis()

    # -- state -----------------------------------------------------------------------------------------------------

    @property
    def models(self) -> LoadedModels:
        """The loaded models (waits while they load; `AppError` if they could not be loaded)."""
        return self.loader.get()

    @property
    def analysis(self):
        """The dataset analysis (`BackgroundAnalysis`), or a `PendingAnalysis` saying why there is none yet."""
        return self._analysis

    def offline_status(self) -> None:
        """None: this lab answers at once (`app.ModelProcess.offline_status` says why a process cannot yet)."""
        return None

    def status(self) -> dict:
        """The models: `{"ready", "failed", "message"}` (Markdown), without waiting."""
        return {"ready": self.loader.ready, "failed": self.loader.failed, "message": self.loader.status()}

    def _make_analysis(self, models: LoadedModels) -> None:
        from .explorer import BackgroundAnalysis

        given = self._analysis_arg
        try:
            analysis = given if isinstance(given, BackgroundAnalysis) else BackgroundAnalysis(models.dae, models.mae,
                                                                                              given)
        except ValueError as err:  # settings from the environment (MAE_HF_APP_N, ...) that make no sense
            self._analysis = PendingAnalysis(self.loader, str(err))  # shown in the tabs; the models still serve
            logger.error("The dataset analysis cannot run: %s", err)
            return
        with self._analysis_lock:
            self._analysis = analysis
        self._maybe_start_analysis()

    def _maybe_start_analysis(self) -> None:
        """
        Start the analysis once it is asked for, the models are loaded, and no request is being answered: the
        requests that waited for the models (the app has just started) get their answers first. In a thread of
        its own, so a request's reply does not wait for the analysis's imports.
        """
        with self._analysis_lock:
            analysis = self._analysis
            if (not self._start_analysis or self._analysis_started or self._busy
                    or isinstance(analysis, PendingAnalysis)):
                return
            self._analysis_started = True
        threading.Thread(target=analysis.start, name="mae_hf-analysis-start", daemon=True).start()

    def start_analysis(self) -> None:
        """Start the dataset analysis as soon as the models are loaded (and no request is being answered)."""
        # Gradio calls `matplotlib.use("agg")` around every request, which switches pyplot's backend unless it
        # already has exactly that name, and switching fails on a pyplot that another thread is half-way through
        # importing. With "agg" set before the server runs, gradio's calls never touch pyplot, so the models'
        # loader thread can import it (`BackgroundAnalysis.start`) when it starts the analysis.
        import matplotlib

        matplotlib.use("agg")
        with self._analysis_lock:
            self._start_analysis = True
        self._maybe_start_analysis()

    # -- the current digit -----------------------------------------------------------------------------------------

    def digit(self, image) -> np.ndarray:
        """Any picture of a digit (file path, array, Sketchpad value) → the uint8 (28, 28) MNIST-style model input."""
        from .digits import DigitImageError, preprocess_digit

        try:
            return to_uint8(preprocess_digit(image))
        except DigitImageError as err:
            raise AppError(str(err), title="Cannot use this image") from err

    def _digit_tensor(self, image):
        import torch

        if image is None:
            raise AppError("There is no digit yet: draw, upload or pick one on the Reconstruct tab.", title="No digit")
        # from the uint8 digit: the same input whether the digit comes as floats or as the stored PNG
        return torch.from_numpy(self.digit(image).astype(np.float32) / 255.0)[None, None]  # (1, 1, 28, 28)

    def reconstruct(self, image, mask_ratio: float = 0.75, noise_factor: float = 0.5, seed: int = 0,
                    corruption: str = "own") -> tuple:
        """
        Corrupt the digit and reconstruct it with both models.

        `image`: any picture of a digit (a 28×28 one is taken as MNIST-formatted); `corruption`: "own", "mask"
        or "noise". Returns the model input (uint8 28×28), the MAE's input, reconstruction and pasted image, the
        DAE's input and reconstruction (each enlarged `DISPLAY_SCALE`×) and the PSNR/SSIM rows.
        """
        from .comparison import compare_reconstructions, metrics_table, to_display

        x = self._digit_tensor(image)
        models = self.models
        try:
            with self.lock:
                result = compare_reconstructions(
                    models.dae, models.mae, x, mask_ratio=float(mask_ratio), noise_factor=float(noise_factor),
                    seed=int(seed if seed is not None else 0), corruption=corruption,
                )
        except (ValueError, TypeError) as err:
            raise AppError(str(err), title="Invalid setting") from err
        show = lambda img, mask=None: to_display(img, DISPLAY_SCALE, mask)  # noqa: E731
        return (
            to_uint8(x[0, 0].numpy()),
            show(result.mae_input, result.mae_pixel_mask),
            show(result.mae_reconstruction),
            show(result.mae_pasted),
            show(result.dae_input, result.dae_pixel_mask),
            show(result.dae_reconstruction),
            metrics_table(result.metrics),
        )

    def attention(self, image, mask_ratio: float = 0.75, seed: int = 0, corruption: str = "own") -> tuple:
        """
        The digit's MAE CLS attention per layer and head and its rollout (masking off, and under the Reconstruct
        tab's mask for this seed), and DAE / MAE saliency overlays. Returns the attention figure without mask, the
        one under the mask, the overlay row (images) and a Markdown summary.
        """
        from .explorer import digit_attention

        x = self._digit_tensor(image)
        models = self.models
        ratio = 0.0 if corruption == "noise" else float(mask_ratio)
        try:
            with self.lock:
                maps = digit_attention(models.dae, models.mae, x, ratio, int(seed or 0))
        except ValueError as err:
            raise AppError(str(err), title="Invalid setting") from err
        return (*attention_figures(x[0], maps), attention_summary(maps, ratio))

    def latent_space(self, image=None, mae_features: str = "mae_cls") -> tuple:
        """
        Both models' t-SNE maps (test digits, coloured by class), with the digit placed into each as a star when
        one is given, its nearest training digits, and the radius / honest-measure tables.

        Returns: status Markdown, the maps, the neighbours (list of (image, caption)), the placement rows, the
        radius rows, the measure rows. Before the background analysis is done: the status and Nones.
        """
        status = self.analysis.status()
        if not self.analysis.ready:
            return status, None, None, None, None, None
        from .comparison import to_display
        from .explorer import PLACEABLE_FEATURES, digit_features, place_digit

        if mae_features not in PLACEABLE_FEATURES or mae_features == "dae":
            raise AppError(f"`mae_features` must be one of {[f for f in PLACEABLE_FEATURES if f != 'dae']}.",
                           title="Invalid setting")
        keys = ("dae", mae_features)
        analysis = self.analysis
        placements = {}
        if image is not None:
            x = self._digit_tensor(image)
            models = self.models
            with self.lock:
                feats = {k: digit_features(models.dae, models.mae, x, k) for k in keys}
            for k in keys:
                placements[k] = place_digit(analysis.embedding(k), feats[k], analysis.maps[k]["train_features"])
        maps_image = figure_image(latent_maps_figure(analysis.maps, analysis.summary, keys, placements))
        gallery, rows = [], []
        for k, p in placements.items():
            xy = p["coordinates"]
            labels = analysis.train_y[p["neighbours"]]
            rows.append([FEATURE_NAMES[k], f"{xy[0]:.2f}", f"{xy[1]:.2f}",
                         " ".join(str(int(c)) for c in labels), f"{np.bincount(labels).argmax()}"])
            for rank, (i, d) in enumerate(zip(p["neighbours"], p["distances"])):
                img = to_display(analysis.train_x[i], DISPLAY_SCALE)
                gallery.append((img, f"{FEATURE_NAMES[k]} #{rank + 1}: train {int(i)}, label {analysis.train_y[i]}, "
                                     f"distance {d:.2f}"))
        return (status, maps_image, gallery or None, rows or None, radius_table(analysis.summary),
                measures_table(analysis.summary))

    # -- the test set and the models -------------------------------------------------------------------------------

    def analysis_status(self) -> dict:
        """The background analysis: `{"ready", "failed", "progress" (0–1), "stage", "message"}`."""
        a = self.analysis
        return {"ready": a.ready, "failed": a.failed, "progress": round(a.progress(), 3), "stage": a.stage,
                "message": a.status()}

    def metrics(self) -> tuple:
        """Status Markdown, test-set PSNR and SSIM histograms of both models under both corruptions, and the
        summary rows (Nones until the analysis is ready)."""
        if not self.analysis.ready:
            return self.analysis.status(), None, None, None
        v = self._views()
        return self.analysis.status(), v["psnr"], v["ssim"], v["metrics_table"]

    def weights(self) -> tuple:
        """Status Markdown, per-layer weight histograms (trained vs init) of the DAE and the MAE, and the near-zero
        rows (Nones until the analysis is ready)."""
        if not self.analysis.ready:
            return self.analysis.status(), None, None, None
        v = self._views()
        return self.analysis.status(), v["weights_dae"], v["weights_mae"], v["weights_table"]

    def verdicts(self) -> str:
        """The study's claims H1–H3 with the verdict under each measure, as Markdown (the status until ready)."""
        if not self.analysis.ready:
            return self.analysis.status()
        return verdicts_markdown(self.analysis.summary)

    def model_summary(self) -> str:
        """Where the models came from, their size and cards (Markdown; the loading status until they are there)."""
        return model_summary(self.loader.models) if self.loader.ready else self.loader.status()

    def _views(self) -> dict:
        """The dataset-level figures, rendered once and shared by every visitor."""
        with self._views_lock:
            if self._view_cache is None:
                self._view_cache = dataset_views(self.analysis.summary)
            return self._view_cache


# --- the model process ---------------------------------------------------------------------------------------------


def serve(lab: DigitLab, address: str, authkey: bytes) -> None:
    """Answer `lab.call` requests `(name, args, kwargs)` on `address`, one thread per connection, forever."""
    with Listener(address, authkey=authkey) as listener:
        logger.info("Model process serving on %s", address)
        while True:
            try:
                conn = listener.accept()
            except OSError as err:  # e.g. a client with the wrong key: refuse it, keep serving
                logger.warning("Refused a connection: %s", err)
                continue
            threading.Thread(target=_answer, args=(lab, conn), name="mae_hf-request", daemon=True).start()


def _answer(lab: DigitLab, conn) -> None:
    with conn:
        while True:
            try:
                name, args, kwargs = conn.recv()
            except (EOFError, OSError):  # the app closed this connection
                return
            reply = lab.call(name, args, kwargs)
            try:
                conn.send(reply)  # pickles first: nothing is written when that fails
            except (EOFError, OSError):
                return
            except Exception as err:  # noqa: BLE001 - an answer that cannot be pickled: say so, keep the connection
                logger.exception("The answer to %s could not be sent", name)
                conn.send(("error", f"The answer to {name!r} could not be sent ({type(err).__name__}: {err})."))


def _exit_with_parent() -> None:
    """The app holds this process's stdin open: when the app ends, however it ends, stdin closes and so do we."""
    while sys.stdin.buffer.read(65536):
        pass
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    """`python -m mae_hf.app_backend --address A --dae D --mae M`: the model process of `python app.py`."""
    parser = argparse.ArgumentParser(description="The model process of app.py (started by it; not for direct use).")
    parser.add_argument("--address", required=True, help="socket to serve on")
    parser.add_argument("--dae", required=True)
    parser.add_argument("--mae", required=True)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--started", type=float, default=time.time(), help="when the app started it (time.time())")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    authkey = bytes.fromhex(os.environ.pop(AUTHKEY_ENV))
    threading.Thread(target=_exit_with_parent, name="mae_hf-parent", daemon=True).start()
    imported = time.time() - args.started
    lab = DigitLab(BackgroundModels(args.dae, args.mae, torch_threads=args.torch_threads))
    lab.loader.when_ready(lambda _: logger.info(
        "Model process ready %.1f s after it was started (importing torch, transformers and mae_hf: %.1f s)",
        time.time() - args.started, imported))
    lab.start_analysis()  # once the models are loaded
    lab.loader.start()
    serve(lab, args.address, authkey)


if __name__ == "__main__":
    main()
