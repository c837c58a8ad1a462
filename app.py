"""mae_hf's Gradio app: draw a digit and watch a masked and a denoising autoencoder rebuild it.

    python app.py [--dae DIR_OR_HUB_ID] [--mae DIR_OR_HUB_ID] [--port N] [--share]

The same through environment variables on a Space: MAE_HF_DAE, MAE_HF_MAE, PORT / GRADIO_SERVER_PORT,
GRADIO_SHARE. Defaults: the bundled models in `pretrained/` (see `mae_hf.cli.pretrained_dir`).

This file only assembles tabs; each tab is a small function, each handler a plain function with an `api_name`
that calls `mae_hf` (so `gradio_client` can call it too).

Cold start: the page is served before torch, transformers and `mae_hf` are imported (together about two thirds
of a cold start). Only gradio and numpy are imported at the top; `python app.py` checks the model folders
cheaply, launches, then `BackgroundModels` imports the rest and loads both models in a thread. Handlers called
before that is done wait for it (showing that the models are loading), so an early click gets its answer.
"""

import argparse
import importlib.abc
import importlib.machinery
import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

# Nothing here needs the network with the bundled models: keep gradio from phoning home.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Runs `patch(module)` right after the module `name` is first executed (then leaves `sys.meta_path`)."""

    def __init__(self, name: str, patch):
        self.name, self.patch = name, patch

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            self.patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


def _skip_gradio_stub_writing() -> None:
    """
    Keep gradio from writing type stubs while it is imported: its `ComponentMeta` calls `create_or_modify_pyi` for
    every component class it defines, which reads and `ast`-parses the class's whole source file, renders a
    template and rewrites a `.pyi` next to it. That is about 3 of the 5.5 s `import gradio` takes on 2 CPU cores
    (measured with `python -X importtime`), for editor stubs a server never reads; it also wrote `app.pyi` next to
    this file. Without the hook (another gradio version) gradio simply writes its stubs as before.
    """

    def patch(module) -> None:
        if hasattr(module, "create_or_modify_pyi"):
            module.create_or_modify_pyi = lambda *args, **kwargs: None

    if "gradio.component_meta" in sys.modules:  # gradio is already imported (e.g. by a test): new classes only
        patch(sys.modules["gradio.component_meta"])
    else:
        sys.meta_path.insert(0, _PatchAfterImport("gradio.component_meta", patch))


_skip_gradio_stub_writing()

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

if TYPE_CHECKING:  # imported where they are used, once `BackgroundModels` has loaded them (see the docstring)
    import torch

    from mae_hf.explorer import BackgroundAnalysis, ExplorerSettings
    from mae_hf.loading import LoadedModels

logger = logging.getLogger("mae_hf.app")

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
# 28×28 → 112×112 by nearest neighbour; the browser enlarges further with crisp pixels (CSS `pixelated`). Larger
# PNGs cost server time on every request for no visible gain.
DISPLAY_SCALE = 4
# The Reconstruct tab's corruption choices: (label, value), values as `mae_hf.comparison.CORRUPTIONS` (a test
# checks they match; spelled out here so the page is built before `mae_hf` is imported).
CORRUPTION_CHOICES = [
    ("Each its own (MAE: patch mask, DAE: Gaussian noise)", "own"),
    ("Same patch mask for both", "mask"),
    ("Same Gaussian noise for both (MAE unmasked)", "noise"),
]
METRIC_HEADERS = ["Output", "Corrupted input PSNR (dB)", "Output PSNR (dB)", "Output SSIM", "Masked-region PSNR (dB)"]
CSS = """
.pixelated img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }
#examples img { image-rendering: pixelated; }
#title { margin-bottom: 0; }
.explain { font-size: 0.9em; opacity: 0.85; }
"""


class DigitImage(gr.Image):
    """
    A `gr.Image` whose file reaches the handler as its path, unopened, so that `mae_hf.digits` validates it: an
    image of any size or mode, a non-image or a corrupt file all get a clear message instead of failing inside
    gradio's own decoding.
    """

    is_template = True  # rendered by the frontend's Image component

    def preprocess(self, payload):
        if payload is None or payload.path is None:
            return super().preprocess(payload)
        return str(payload.path)


class DigitSketchpad(gr.Sketchpad):
    """`gr.Sketchpad` whose unreadable payloads (possible through the API) become a clear `gr.Error`."""

    is_template = True

    def get_block_name(self) -> str:
        return "imageeditor"

    def get_block_class(self) -> str:
        return "imageeditor"

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except Exception as err:  # noqa: BLE001 - anything gradio's decoding raises
            raise gr.Error(f"The drawing could not be read ({type(err).__name__}: {err}). Draw again.") from err


def to_uint8(digit: np.ndarray) -> np.ndarray:
    """[0, 1] floats → uint8, the form the model-input image is stored in (a lossless PNG)."""
    return np.round(np.clip(digit, 0.0, 1.0) * 255).astype(np.uint8)


def quantize(digit: np.ndarray) -> np.ndarray:
    """Round to 8 bits, so a digit gives the same result whether it comes as floats or as the stored PNG."""
    return to_uint8(digit).astype(np.float32) / 255.0


# Select the Sketchpad's brush once the page is ready, so a visitor can draw at once (gradio starts without a tool).
SELECT_BRUSH_JS = """
() => {
  let tries = 0;
  const pick = () => {
    const brush = document.querySelector('#sketchpad button[aria-label="Brush"]');
    if (brush) { brush.click(); } else if (tries++ < 50) { setTimeout(pick, 100); }
  };
  pick();
}
"""


def _user_error(err: Exception) -> gr.Error:
    return gr.Error(str(err), title="Cannot use this image")


# --- figures and tables for the analysis tabs (arrays from mae_hf.explorer → images and rows) ---------------------

FEATURE_NAMES = {"dae": "DAE bottleneck", "mae_cls": "MAE CLS token", "mae_mean": "MAE mean patch token",
                 "raw_pixels": "raw pixels", "mae_masked_flat": "MAE masked, flattened (study)"}
MAE_FEATURE_CHOICES = [(FEATURE_NAMES[k], k) for k in ("mae_cls", "mae_mean", "raw_pixels")]


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


def attention_figures(image: "torch.Tensor", maps: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CLS-attention figures (masking off / under the mask) and the overlay row, as images."""
    from mae_hf import plotting
    from mae_hf.analysis.attention import upsample_grid

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

    from mae_hf import plotting

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

    from mae_hf import plotting

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


RADIUS_HEADERS = ["Features", "t-SNE radius", "Original-space radius", "Scale-free radius (original space)",
                  "Scale-free radius (t-SNE)"]
MEASURE_HEADERS = ["Features", "Dim", "Silhouette", "Trustworthiness", "kNN accuracy (k=5)", "Linear probe accuracy"]


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


METRICS_HEADERS = ["Model", "Corruption", "PSNR (dB)", "SSIM", "Masked-region PSNR (dB)", "Corrupted input PSNR (dB)"]
WEIGHTS_HEADERS = ["Model", "State", "Weights", "Near-zero (absolute)", "Near-zero (relative to layer std)"]


def _mean_std(summary: dict, digits: int = 2) -> str:
    return f"{_num(summary['mean'], digits)} ± {_num(summary['std'], digits)}"


def dataset_views(summary) -> dict:
    """Every dataset-level image and table (rendered once, then served to every visitor)."""
    from mae_hf import plotting

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


class BackgroundModels:
    """
    Both models, loaded in a daemon thread so that the page is served first: importing torch, transformers and
    `mae_hf` is most of a cold start. Handlers call `get()`, which waits until the models are there.

    `BackgroundModels.loaded(models)` wraps models that are already loaded (tests, notebooks). `torch_threads`:
    set torch's intra-op threads once it is imported (the app uses 1).
    """

    def __init__(self, dae: str | os.PathLike, mae: str | os.PathLike, torch_threads: int | None = None):
        self.dae_source, self.mae_source = str(dae), str(mae)
        self.torch_threads = torch_threads
        self.models: "LoadedModels | None" = None
        self.error: str | None = None
        self.stage = "waiting to start"
        self.seconds: float | None = None
        self._started: float | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list = []
        self._thread: threading.Thread | None = None

    @classmethod
    def loaded(cls, models: "LoadedModels") -> "BackgroundModels":
        """Already loaded `LoadedModels`, behind the same interface."""
        done = cls(models.dae_source, models.mae_source)
        done.models, done.stage = models, "loaded"
        done._done.set()
        return done

    @property
    def ready(self) -> bool:
        return self._done.is_set() and self.error is None

    @property
    def failed(self) -> bool:
        return self._done.is_set() and self.error is not None

    def status(self) -> str:
        """One line of Markdown: what is being loaded, that loading failed and why, or that the models are there."""
        if self.ready:
            return "Models loaded." if self.seconds is None else f"Models loaded in {self.seconds:.1f} s."
        if self.failed:
            return f"**The models could not be loaded.** {self.error}"
        waited = "" if self._started is None else f", {time.perf_counter() - self._started:.0f} s so far"
        return (f"⏳ **Loading the models** ({self.stage}{waited}). Draw, upload or pick a digit meanwhile: it is "
                "reconstructed as soon as they are ready.")

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
        models = None
        try:
            self.stage = "importing torch and transformers"
            import torch

            from mae_hf.loading import ModelLoadError, load_models

            if self.torch_threads is not None:  # the app: 1 per request (tiny models; threads would fight for cores)
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
                logger.info("Models loaded in %.1f s (torch, transformers and mae_hf imported in the background)",
                            self.seconds)
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks if self.error is None else ():
            try:
                fn(models)
            except Exception:  # noqa: BLE001 - a callback's failure must not hide the models from the handlers
                logger.exception("A callback on the loaded models failed")

    def get(self, timeout: float = 600.0) -> "LoadedModels":
        """
        The loaded models, waiting while they load.

        Raises:
            gr.Error: the models could not be loaded (the message says why), or were not loaded in `timeout` s.
        """
        if not self._done.wait(timeout):
            raise gr.Error(f"The models are still loading ({self.stage}) after {timeout:.0f} s; try again later.",
                           title="Models not loaded")
        if self.error is not None:
            raise gr.Error(self.error, title="The models could not be loaded")
        return self.models


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
        return "loading the models"

    def progress(self) -> float:
        return 0.0

    def status(self) -> str:
        if self.error is not None:
            return f"**The dataset analysis could not start:** {self.error}"
        if self.loader.failed:
            return f"**The dataset analysis cannot run: the models could not be loaded.** {self.loader.error}"
        return ("⏳ **Loading the models** before the dataset analysis starts in the background. This tab fills in by "
                "itself when it is done.")


class DigitLab:
    """The handlers, bound to the models (loaded, or loading in the background: handlers wait for them). One lock
    serialises model calls: ViTMAE reads its mask ratio from its (shared) config at forward time, and the models
    are tiny, so serial forwards are fast.

    Args:
        models: `LoadedModels`, or `BackgroundModels` (started or not).
        analysis: the dataset analysis: a `BackgroundAnalysis`, or `ExplorerSettings` (default:
            `ExplorerSettings.from_env()`) for one that is made from the models once they are loaded.
    """

    def __init__(self, models: "LoadedModels | BackgroundModels",
                 analysis: "BackgroundAnalysis | ExplorerSettings | None" = None):
        self.loader = models if isinstance(models, BackgroundModels) else BackgroundModels.loaded(models)
        self.lock = threading.Lock()
        self._analysis_arg = analysis
        self._analysis: "BackgroundAnalysis | PendingAnalysis" = PendingAnalysis(self.loader)
        self._start_analysis = False
        self._analysis_lock = threading.Lock()
        self._views_lock = threading.Lock()
        self._view_cache: dict | None = None
        self.loader.when_ready(self._make_analysis)

    @property
    def models(self) -> "LoadedModels":
        """The loaded models (waits while they load; `gr.Error` if they could not be loaded)."""
        return self.loader.get()

    @property
    def analysis(self) -> "BackgroundAnalysis | PendingAnalysis":
        """The dataset analysis, or a `PendingAnalysis` saying why there is none yet."""
        return self._analysis

    def _make_analysis(self, models: "LoadedModels") -> None:
        from mae_hf.explorer import BackgroundAnalysis

        given = self._analysis_arg
        try:
            analysis = given if isinstance(given, BackgroundAnalysis) else BackgroundAnalysis(models.dae, models.mae,
                                                                                              given)
        except ValueError as err:  # settings from the environment (MAE_HF_APP_N, ...) that make no sense
            self._analysis = PendingAnalysis(self.loader, str(err))  # shown in the tabs
            raise
        with self._analysis_lock:
            self._analysis = analysis
            start = self._start_analysis
        if start:
            import matplotlib.pyplot  # noqa: F401 - in full, before `start` switches the backend (see start_analysis)

            analysis.start()

    def start_analysis(self) -> None:
        """Start the dataset analysis now, or as soon as the models are loaded."""
        # Around every request gradio calls `matplotlib.use("agg")`, which switches pyplot's backend unless the
        # backend already has exactly that name, and switching fails on a pyplot that another thread is half-way
        # through importing (`BackgroundAnalysis.start` imports pyplot in its caller's thread for this reason).
        # With "agg" set here, before the server runs, gradio's calls never touch pyplot, so the models' loader
        # thread can import it (~0.5 s that the page need not wait for) before it starts the analysis.
        import matplotlib

        matplotlib.use("agg")
        with self._analysis_lock:
            self._start_analysis = True
            analysis = None if isinstance(self._analysis, PendingAnalysis) else self._analysis
        if analysis is not None:
            analysis.start()

    def wait_for_models(self) -> "LoadedModels":
        """`models`; a request that comes before they are loaded waits, and its page says so (a toast)."""
        if not self.loader.wait(0):
            gr.Info("The models are still loading (the app has just started): the answer comes as soon as they "
                    "are ready, in a few seconds.", duration=6, title="Loading the models")
        return self.loader.get()

    def _digit(self, image) -> np.ndarray:
        """Any picture of a digit, or a Sketchpad value → the (28, 28) MNIST-style model input in [0, 1]. Waits
        for the models first (`mae_hf` is imported with them)."""
        self.wait_for_models()
        from mae_hf.digits import DigitImageError, preprocess_digit

        try:
            return preprocess_digit(image)
        except DigitImageError as err:
            raise _user_error(err) from err

    def digit_from_sketch(self, sketch):
        """The drawing on the canvas → the 28×28 MNIST-style model input."""
        return to_uint8(self._digit(sketch if sketch is not None else {}))

    def digit_from_upload(self, image):
        """An uploaded picture (any size or mode) → the 28×28 MNIST-style model input."""
        return to_uint8(self._digit(image))

    def reconstruct(self, image, mask_ratio: float = 0.75, noise_factor: float = 0.5, seed: int = 0,
                    corruption: str = "own"):
        """
        Corrupt the digit and reconstruct it with both models.

        `image`: any picture of a digit (a 28×28 one is taken as MNIST-formatted); `corruption`: "own", "mask"
        or "noise". Returns the model input, the MAE's input, reconstruction and pasted image, the DAE's input and
        reconstruction (each enlarged 4×) and the PSNR/SSIM table. Called while the models are still loading, it
        waits for them.
        """
        digit = quantize(self._digit(image))
        import torch

        from mae_hf.comparison import compare_reconstructions, metrics_table, to_display

        models = self.models
        try:
            seed = int(seed if seed is not None else 0)
            pixel_values = torch.from_numpy(digit)[None, None]  # (1, 1, 28, 28)
            with self.lock:
                result = compare_reconstructions(
                    models.dae, models.mae, pixel_values,
                    mask_ratio=float(mask_ratio), noise_factor=float(noise_factor), seed=seed, corruption=corruption,
                )
        except (ValueError, TypeError) as err:
            raise gr.Error(str(err), title="Invalid setting") from err
        show = lambda img, mask=None: to_display(img, DISPLAY_SCALE, mask)  # noqa: E731
        return (
            to_uint8(digit),
            show(result.mae_input, result.mae_pixel_mask),
            show(result.mae_reconstruction),
            show(result.mae_pasted),
            show(result.dae_input, result.dae_pixel_mask),
            show(result.dae_reconstruction),
            metrics_table(result.metrics),
        )

    def reconstruct_if_ready(self, image, mask_ratio, noise_factor, seed, corruption):
        """
        The UI's reconstruction (after a new digit or a changed control): like `reconstruct`, but it leaves the
        model-input image alone (it is already shown; re-sending the same picture makes gradio rewrite the file
        the browser may be fetching) and quietly does nothing while there is no digit yet.
        """
        if image is None:
            return [gr.skip()] * 7
        return [gr.skip(), *self.reconstruct(image, mask_ratio, noise_factor, seed, corruption)[1:]]

    # -- tabs on the current digit --------------------------------------------------------------------------------

    def _digit_tensor(self, image) -> "torch.Tensor":
        if image is None:
            raise gr.Error("There is no digit yet: draw, upload or pick one on the Reconstruct tab.",
                           title="No digit")
        digit = quantize(self._digit(image))
        import torch

        return torch.from_numpy(digit)[None, None]  # (1, 1, 28, 28)

    def attention(self, image, mask_ratio: float = 0.75, noise_factor: float = 0.5, seed: int = 0,
                  corruption: str = "own"):
        """
        The current digit's MAE CLS attention per layer and head and its rollout (masking off, and under the
        Reconstruct tab's mask for this seed), and DAE / MAE saliency overlays.

        Returns: the attention figure without mask, the one under the mask, the overlay row (all PNG images) and a
        Markdown summary. `noise_factor` is accepted so the inputs match the Reconstruct tab (saliency is taken on
        the clean digit).
        """
        x = self._digit_tensor(image)
        from mae_hf.explorer import digit_attention

        models = self.models
        ratio = 0.0 if corruption == "noise" else float(mask_ratio)
        try:
            with self.lock:
                maps = digit_attention(models.dae, models.mae, x, ratio, int(seed or 0))
        except ValueError as err:
            raise gr.Error(str(err), title="Invalid setting") from err
        return (*attention_figures(x[0], maps), attention_summary(maps, ratio))

    def attention_if_digit(self, image, mask_ratio: float = 0.75, noise_factor: float = 0.5, seed: int = 0,
                           corruption: str = "own"):
        """`attention` when a digit is in place (opening the tab), else leave the outputs as they are."""
        if image is None:
            return (gr.skip(),) * 4
        return self.attention(image, mask_ratio, noise_factor, seed, corruption)

    def latent_space(self, image=None, mae_features: str = "mae_cls"):
        """
        Both models' t-SNE maps (test digits, coloured by class), with the current digit placed into each as a
        star when one is given, its nearest training digits, and the radius / honest-measure tables.

        Returns: status Markdown, the maps (PNG), the neighbours (gallery of (image, caption)), the placement
        table, the radius table, the measures table. Before the background analysis is done: the status and empty
        outputs.
        """
        status = self._status()
        if not self.analysis.ready:
            return status, None, None, None, None, None
        from mae_hf.comparison import to_display
        from mae_hf.explorer import PLACEABLE_FEATURES, digit_features, place_digit

        if mae_features not in PLACEABLE_FEATURES or mae_features == "dae":
            raise gr.Error(f"`mae_features` must be one of {[f for f in PLACEABLE_FEATURES if f != 'dae']}.",
                           title="Invalid setting")
        keys = ("dae", mae_features)
        summary = self.analysis.summary
        placements = {}
        if image is not None:
            x = self._digit_tensor(image)
            models = self.models
            with self.lock:
                feats = {k: digit_features(models.dae, models.mae, x, k) for k in keys}
            for k in keys:
                m = self.analysis.maps[k]
                placements[k] = place_digit(self.analysis.embedding(k), feats[k], m["train_features"])
        maps_image = figure_image(latent_maps_figure(self.analysis.maps, summary, keys, placements))
        gallery, rows = [], []
        for k, p in placements.items():
            xy = p["coordinates"]
            labels = self.analysis.train_y[p["neighbours"]]
            rows.append([FEATURE_NAMES[k], f"{xy[0]:.2f}", f"{xy[1]:.2f}",
                         " ".join(str(int(c)) for c in labels), f"{np.bincount(labels).argmax()}"])
            for rank, (i, d) in enumerate(zip(p["neighbours"], p["distances"])):
                img = to_display(self.analysis.train_x[i], DISPLAY_SCALE)
                gallery.append((img, f"{FEATURE_NAMES[k]} #{rank + 1}: train {int(i)}, label {self.analysis.train_y[i]}, "
                                     f"distance {d:.2f}"))
        return (status, maps_image, gallery or None, rows or None, radius_table(summary), measures_table(summary))

    def latent_space_if_ready(self, image, mae_features):
        """The Latent tab after the digit changed: quietly waits while the analysis is running."""
        if not self.analysis.ready:
            return [gr.skip()] * 6
        return self.latent_space(image, mae_features)

    # -- tabs on the test set and the models ----------------------------------------------------------------------

    def analysis_status(self) -> dict:
        """The background analysis: `{"ready", "failed", "progress" (0–1), "stage", "message"}`."""
        a = self.analysis
        return {"ready": a.ready, "failed": a.failed, "progress": round(a.progress(), 3), "stage": a.stage,
                "message": a.status()}

    def _status(self) -> str:
        return self.analysis.status()

    def metrics(self):
        """Test-set PSNR / SSIM histograms of both models under both corruptions, and the summary table.
        Returns: status Markdown, PSNR histogram (PNG), SSIM histogram (PNG), table (None until ready)."""
        if not self.analysis.ready:
            return self._status(), None, None, None
        v = self._views()
        return self._status(), v["psnr"], v["ssim"], v["metrics_table"]

    def weights(self):
        """Per-layer weight histograms (trained vs init) of both models and the near-zero table.
        Returns: status Markdown, DAE histograms (PNG), MAE histograms (PNG), table (None until ready)."""
        if not self.analysis.ready:
            return self._status(), None, None, None
        v = self._views()
        return self._status(), v["weights_dae"], v["weights_mae"], v["weights_table"]

    def verdicts(self) -> str:
        """The study's claims H1–H3 with the verdict under each measure, as Markdown (the status until ready)."""
        if not self.analysis.ready:
            return self._status()
        return verdicts_markdown(self.analysis.summary)

    def _views(self) -> dict:
        """The dataset-level figures, rendered once and shared by every visitor."""
        with self._views_lock:
            if self._view_cache is None:
                self._view_cache = dataset_views(self.analysis.summary)
            return self._view_cache

    def refresh(self, image, mae_features):
        """Timer tick: the dataset-level tabs, filled in (and the timer stopped) once the analysis is ready."""
        done = self.analysis.ready or self.analysis.failed
        return (*self.metrics(), *self.latent_space(image if done else None, mae_features), *self.weights(),
                self.verdicts(), gr.Timer(active=not done))

    def watch_models(self):
        """
        Page load: the model-loading banner, updated until the models are loaded (then hidden, or showing why
        they could not be), and the About tab's model summary once they are there.
        """
        while not self.loader.wait(0.5):
            yield gr.Markdown(self.loader.status(), visible=True), gr.skip()
        summary = model_summary(self.loader.models) if self.loader.ready else self.loader.status()
        yield gr.Markdown(self.loader.status(), visible=self.loader.failed), summary


@dataclass
class DigitControls:
    """The Reconstruct tab's shared components, for tabs that work on the current digit and corruption."""

    digit: gr.Image
    mask_ratio: gr.Slider
    noise_factor: gr.Slider
    seed: gr.Number
    corruption: gr.Radio


def _result_image(label: str) -> gr.Image:
    return gr.Image(label=label, format="png", interactive=False, height=210, buttons=["download"],
                    elem_classes="pixelated")


def example_files(folder: Path = EXAMPLES_DIR) -> list[Path]:
    """The example digits (PNG files from the embedded MNIST test split), sorted by digit."""
    return sorted(folder.glob("*.png"), key=lambda p: p.stem.rsplit("-", 1)[-1])


def reconstruct_tab(lab: DigitLab, examples: list[Path]) -> DigitControls:
    """Draw / upload / pick a digit, set the corruption, and compare both reconstructions."""
    digit = DigitImage(
        label="Model input (28×28, what both models see)", type="filepath", image_mode=None, format="png",
        interactive=False, height=230, elem_classes="pixelated", elem_id="model-input", render=False,
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            with gr.Tabs():
                with gr.Tab("Draw", id="draw"):
                    sketch = DigitSketchpad(
                        label="Draw one digit (0–9), large, with the mouse or a finger",
                        canvas_size=(280, 280), type="numpy", image_mode="RGBA", format="png", layers=False,
                        transforms=(), brush=gr.Brush(default_size=10, colors=["#000000"], color_mode="fixed"),
                        height=380, elem_id="sketchpad",
                    )
                    draw_button = gr.Button("Reconstruct drawing", variant="primary", elem_id="reconstruct-drawing")
                with gr.Tab("Upload", id="upload"):
                    upload = DigitImage(
                        label="Upload a picture of a digit (any size; dark on light or light on dark)",
                        type="filepath", image_mode=None, format="png", sources=["upload", "clipboard"],
                        height=380, elem_id="upload",
                    )
            gr.Markdown(
                "Drawings and uploads are converted the way MNIST was made: grayscale, inverted to white on black, "
                "cropped to the digit, scaled to fit 20×20 and centred by centre of mass in 28×28.",
                elem_classes="explain",
            )
            picked = None
            if examples:
                picked = gr.Examples(
                    [[str(p)] for p in examples], inputs=[digit], label="Or pick a digit from the MNIST test split",
                    examples_per_page=10, elem_id="examples",
                )
        with gr.Column(scale=4):
            digit.render()
            mask_ratio = gr.Slider(0.0, 0.95, value=0.75, step=0.05, label="MAE mask ratio",
                                   info="Fraction of the 4×4 patches hidden from the MAE (it was trained at 0.75).")
            noise_factor = gr.Slider(0.0, 1.5, value=0.5, step=0.05, label="DAE noise factor",
                                     info="Std of the Gaussian noise added to the DAE's input (trained at 0.5).")
            with gr.Row():
                seed = gr.Number(value=0, precision=0, minimum=0, label="Seed", info="Same seed → same corruption.")
                corruption = gr.Radio(CORRUPTION_CHOICES, value="own", label="Corruption", scale=2)
            run_button = gr.Button("Reconstruct", variant="primary", elem_id="reconstruct")

    gr.Markdown("### Masked autoencoder (ViTMAE)")
    with gr.Row():
        mae_input = _result_image("MAE input (hidden patches in blue)")
        mae_recon = _result_image("MAE reconstruction (every patch predicted)")
        mae_pasted = _result_image("MAE output with the visible patches pasted back")
    gr.Markdown("### Denoising autoencoder (CNN)")
    with gr.Row():
        dae_input = _result_image("DAE input (corrupted)")
        dae_recon = _result_image("DAE reconstruction")
        gr.Markdown(
            "**How to read this.** PSNR (peak signal-to-noise ratio, in dB, higher is better) and SSIM (structural "
            "similarity, 1 = identical) compare each output with the clean model input on [0, 1]. *Corrupted "
            "input PSNR* is the corrupted image's own score, so the gain is visible; *masked-region PSNR* counts "
            "only the hidden patches, where the model had to invent the content.",
            elem_classes="explain",
        )
    table = gr.Dataframe(headers=METRIC_HEADERS, label="Reconstruction quality against the model input",
                         interactive=False, elem_id="metrics")

    settings = [mask_ratio, noise_factor, seed, corruption]
    outputs = [digit, mae_input, mae_recon, mae_pasted, dae_input, dae_recon, table]
    run_button.click(lab.reconstruct, [digit, *settings], outputs, api_name="reconstruct")
    draw_button.click(lab.digit_from_sketch, sketch, digit, api_name="digit_from_sketch").success(
        lab.reconstruct_if_ready, [digit, *settings], outputs, api_visibility="private"
    )
    upload.upload(lab.digit_from_upload, upload, digit, api_name="digit_from_upload").success(
        lab.reconstruct_if_ready, [digit, *settings], outputs, api_visibility="private"
    )
    if picked is not None:
        picked.load_input_event.then(lab.reconstruct_if_ready, [digit, *settings], outputs, api_visibility="private")
    for control in (mask_ratio, noise_factor):
        control.release(lab.reconstruct_if_ready, [digit, *settings], outputs, api_visibility="private")
    seed.submit(lab.reconstruct_if_ready, [digit, *settings], outputs, api_visibility="private")
    corruption.change(lab.reconstruct_if_ready, [digit, *settings], outputs, api_visibility="private")
    return DigitControls(digit=digit, mask_ratio=mask_ratio, noise_factor=noise_factor, seed=seed,
                         corruption=corruption)


def model_summary(models: "LoadedModels") -> str:
    """Markdown: where each model came from, its size and shape, and its card when the folder has one."""
    from mae_hf.loading import count_parameters

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


STUDY_JSON = Path(__file__).resolve().parent / "docs" / "study" / "study.json"
GRID_ROWS = (("psnr", "PSNR, own corruption (dB)", 2), ("psnr_masked", "PSNR on masked images, masked pixels (dB)", 2),
             ("psnr_noisy", "PSNR on noisy images (dB)", 2), ("scale_free_radius", "scale-free class radius ↓", 3),
             ("silhouette", "silhouette", 3), ("knn_accuracy", "5-NN accuracy", 3),
             ("probe_accuracy", "linear-probe accuracy", 3))


def study_grid_markdown(path: Path = STUDY_JSON) -> str:
    """The architecture × corruption grid of `mae-hf study` (docs/study/study.json) as Markdown for the About tab."""
    head = "### Beyond the study: architecture × corruption\n\n"
    try:
        study = json.loads(Path(path).read_text())
        cells, summary, effects = study["cells"], study["summary"], study["effects"]
    except (OSError, ValueError, KeyError) as err:
        return head + f"*No study results at `{path}` ({type(err).__name__}); `make study` writes them.*"

    def ci(e, d):
        return f"{e['estimate']:.{d}f} [{e['ci_low']:.{d}f}, {e['ci_high']:.{d}f}]"

    s = study["settings"]
    lines = [head + "The study compared a ViT trained with masking against a CNN trained with noise, so its differences "
             "could come from either factor. `mae-hf study` trains all four pairings on the same data and budget "
             f"({s['num_train_epochs']} epochs, seeds {', '.join(map(str, study['seeds']))}) and splits each difference "
             "into an architecture and a corruption effect. Mean over seeds [95% bootstrap interval]; "
             "full results in `docs/STUDY.md`.", "",
             "| measure | " + " | ".join(cells[c]["label"] for c in cells) + " | architecture effect | corruption effect |",
             "| --- |" + " --- |" * (len(cells) + 2)]
    for key, label, d in GRID_ROWS:
        if key not in effects:
            continue
        eff = [("**" + ci(effects[key][e], d) + "**") if effects[key][e]["significant"] else ci(effects[key][e], d)
               for e in ("architecture", "corruption")]
        lines.append(f"| {label} | " + " | ".join(ci(summary[c][key], d) for c in cells) + " | " + " | ".join(eff) + " |")
    lines += ["", "Effects: architecture = ViT − CNN, corruption = masking − noise (bold: the interval excludes 0).", ""]
    for cid, v in study.get("verdicts", {}).items():
        held = [f"{m} ({r['due_to']})" for m, r in v["measures"].items() if r["verdict"] == "holds"]
        lines.append(f"- **{cid}** {v['claim']}: **{v['verdict']}**" + (f"; holds on {', '.join(held)}" if held else ""))
    return "\n".join(lines)


def about_tab(models: BackgroundModels) -> tuple[gr.Markdown, gr.Markdown]:
    """What the two models are, where they were loaded from, their cards, and the claims with our verdicts.
    Returns the model summary (filled in once the models are loaded) and the verdicts Markdown (filled in by the
    background analysis)."""
    gr.Markdown(
        "**mae_hf** compares a *masked autoencoder* (transformers' `ViTMAEForPreTraining`: hides most 4×4 "
        "patches and predicts them from the rest) with a *convolutional denoising autoencoder* (adds Gaussian "
        "noise and learns to remove it) on MNIST digits. Both are ordinary Hugging Face models: "
        "`ViTMAEForPreTraining.from_pretrained(...)` and `AutoModel.from_pretrained(..., trust_remote_code=True)`."
    )
    summary = gr.Markdown(model_summary(models.models) if models.ready else models.status(), elem_id="model-summary")
    gr.Markdown("### The study's claims, and our verdicts\n\nThe study behind this project claimed (H1) MAE latents "
                "cluster by class more tightly, (H2) the DAE has more near-zero weights so it \"learns less\", and "
                "(H3) the MAE reconstructs better. Each is checked under every measure that bears on it.")
    verdicts = gr.Markdown(elem_id="verdicts")
    gr.Markdown(study_grid_markdown(), elem_id="study-grid")
    return summary, verdicts


def _plot_image(label: str, elem_id: str | None = None) -> gr.Image:
    return gr.Image(label=label, format="png", interactive=False, buttons=["download"], elem_id=elem_id)


def metrics_tab() -> list:
    """Test-set PSNR / SSIM distributions and the summary table. Returns its outputs (for `DigitLab.metrics`)."""
    status = gr.Markdown(elem_classes="explain", elem_id="metrics-status")
    gr.Markdown("Both models on the same test digits, each under its own corruption and under the other's, at the "
                "mask ratio and noise factor they were trained with (one mask shared by both). PSNR and SSIM on [0, 1]; "
                "the MAE's whole-image scores use the visible patches pasted back; *masked-region PSNR* counts only "
                "the hidden patches; the corrupted input's own PSNR shows the gain.", elem_classes="explain")
    with gr.Row():
        psnr = _plot_image("PSNR per test digit", "psnr-hist")
        ssim = _plot_image("SSIM per test digit", "ssim-hist")
    table = gr.Dataframe(headers=METRICS_HEADERS, label="Mean ± std over the test digits", interactive=False,
                         elem_id="metrics-table")
    return [status, psnr, ssim, table]


def latent_tab(lab: DigitLab, controls: DigitControls) -> tuple[list, gr.Dropdown]:
    """t-SNE maps with the current digit placed, its nearest training digits, and the clustering measures."""
    status = gr.Markdown(elem_classes="explain", elem_id="latent-status")
    with gr.Row():
        mae_features = gr.Dropdown(MAE_FEATURE_CHOICES, value="mae_cls", label="Second map",
                                   info="Which features to compare with the DAE's bottleneck.", scale=2)
        place = gr.Button("Place the current digit", variant="primary", scale=1)
    maps = _plot_image("t-SNE of the test digits, coloured by class; ★ = the current digit (openTSNE transform)",
                       "tsne-maps")
    neighbours = gr.Gallery(label="Nearest training digits in each feature space (Euclidean)", columns=8, height=300, format="png",
                            object_fit="contain", elem_classes="pixelated", elem_id="neighbours")
    placement = gr.Dataframe(headers=["Features", "t-SNE x", "t-SNE y", "Neighbours' labels", "Majority"],
                             label="Where the current digit lands", interactive=False)
    gr.Markdown("The study measured class tightness as the radius in t-SNE space. A radius has the units of its "
                "space, so the scale-free radius divides by the mean distance between class centroids; silhouette, "
                "kNN and a linear probe (fit on train digits, scored on test digits) ask directly whether the class "
                "is in the representation. Raw pixels are the baseline.", elem_classes="explain")
    with gr.Row():
        radii = gr.Dataframe(headers=RADIUS_HEADERS, label="Mean per-class radius", interactive=False,
                             elem_id="radius-table")
        measures = gr.Dataframe(headers=MEASURE_HEADERS, label="Honest measures", interactive=False,
                                elem_id="measures-table")
    outputs = [status, maps, neighbours, placement, radii, measures]
    place.click(lab.latent_space, [controls.digit, mae_features], outputs, api_name="latent_space")
    mae_features.change(lab.latent_space_if_ready, [controls.digit, mae_features], outputs, api_visibility="private")
    controls.digit.change(lab.latent_space_if_ready, [controls.digit, mae_features], outputs,
                          api_visibility="private")
    return outputs, mae_features


def attention_tab(lab: DigitLab, controls: DigitControls, tab: gr.Tab) -> None:
    """The current digit's MAE attention and rollout, and both models' saliency, under the current mask.

    Runs by itself when the tab is opened with a digit in place, and again on the button.
    """
    gr.Markdown("MAE: attention from the CLS token to every patch, per layer (rows) and head (columns), and "
                "attention rollout (Abnar & Zuidema 2020) over the layers. Left: masking off; right: under the "
                "Reconstruct tab's mask for this seed and mask ratio (hidden patches grey). Saliency = "
                "|∂‖latent‖/∂pixel|, the same definition for both models.", elem_classes="explain")
    run = gr.Button("Explain the current digit", variant="primary", elem_id="explain")
    with gr.Row():
        plain = _plot_image("CLS attention, masking off", "attention-plain")
        masked = _plot_image("CLS attention under the current mask", "attention-masked")
    overlays = _plot_image("Rollout and saliency over the digit", "saliency")
    summary = gr.Markdown(elem_id="attention-summary")
    inputs = [controls.digit, controls.mask_ratio, controls.noise_factor, controls.seed, controls.corruption]
    outputs = [plain, masked, overlays, summary]
    run.click(lab.attention, inputs, outputs, api_name="attention")
    tab.select(lab.attention_if_digit, inputs, outputs, api_name=False, show_progress="minimal")


def weights_tab() -> list:
    """Per-layer weight histograms and the near-zero table, trained vs init. Returns its outputs."""
    status = gr.Markdown(elem_classes="explain", elem_id="weights-status")
    gr.Markdown("Conv / linear weight tensors (biases, norms, tokens and fixed position tables excluded). *Init* is "
                "the same architecture re-initialised with the same seed, so \"more near-zero weights\" is judged "
                "against where training started.", elem_classes="explain")
    table = gr.Dataframe(headers=WEIGHTS_HEADERS, label="Fraction of weights near zero", interactive=False,
                         elem_id="weights-table")
    dae = _plot_image("DAE", "weights-dae")
    mae = _plot_image("MAE", "weights-mae")
    return [status, dae, mae, table]


def build_demo(models: "LoadedModels | BackgroundModels", examples_dir: Path = EXAMPLES_DIR,
               analysis: "BackgroundAnalysis | ExplorerSettings | None" = None,
               start_analysis: bool = True) -> gr.Blocks:
    """
    The whole app as `gr.Blocks` (not launched): one small function per tab.

    Tabs on the current digit (latent placement, attention) take the Reconstruct tab's `DigitControls` as
    inputs. Tabs on the test set (metrics, latent maps, weights, verdicts) show the `BackgroundAnalysis`, which
    starts here (`start_analysis`; with `BackgroundModels`, once they are loaded) and fills them in by a timer when
    done, so the app serves at once.

    Args:
        models: `LoadedModels`, or `BackgroundModels` (building imports neither torch nor transformers; start
            them after launching, and a banner shows their progress until they are loaded).
        analysis: a `BackgroundAnalysis`, or `ExplorerSettings` for one (default: `ExplorerSettings.from_env()`).
    """
    lab = DigitLab(models, analysis)
    loader = lab.loader
    with gr.Blocks(title="mae_hf: masked vs denoising autoencoders") as demo:
        gr.Markdown("# Masked vs denoising autoencoder on MNIST", elem_id="title")
        gr.Markdown(
            "Draw a digit, upload one or pick one below. The **MAE** sees only some patches and fills in the rest; "
            "the **DAE** sees the whole digit under noise and cleans it up. Same digit, same seed, side by side."
        )
        model_status = gr.Markdown(loader.status(), visible=loader.failed, elem_id="model-status")
        with gr.Tabs():
            with gr.Tab("Reconstruct", id="reconstruct"):
                controls = reconstruct_tab(lab, example_files(examples_dir))
            with gr.Tab("Metrics", id="metrics-tab"):
                metric_outputs = metrics_tab()
            with gr.Tab("Latent space", id="latent-tab"):
                latent_outputs, mae_features = latent_tab(lab, controls)
            with gr.Tab("Attention & saliency", id="attention-tab") as attention:
                attention_tab(lab, controls, attention)
            with gr.Tab("Weights", id="weights-tab"):
                weight_outputs = weights_tab()
            with gr.Tab("About", id="about"):
                summary, verdicts = about_tab(loader)
        # Dataset-level endpoints (the tabs themselves are filled by the timer below).
        status_json = gr.JSON(visible=False)
        demo.load(None, js=SELECT_BRUSH_JS)
        gr.Button(visible=False).click(lab.metrics, None, metric_outputs, api_name="metrics")
        gr.Button(visible=False).click(lab.weights, None, weight_outputs, api_name="weights")
        gr.Button(visible=False).click(lab.verdicts, None, verdicts, api_name="verdicts")
        gr.Button(visible=False).click(lab.analysis_status, None, status_json, api_name="analysis_status")
        timer = gr.Timer(1.0)
        refresh_outputs = [*metric_outputs, *latent_outputs, *weight_outputs, verdicts, timer]
        refresh_inputs = [controls.digit, mae_features]
        timer.tick(lab.refresh, refresh_inputs, refresh_outputs, api_visibility="private", show_progress="hidden",
                   queue=False)
        demo.load(lab.refresh, refresh_inputs, refresh_outputs, api_visibility="private", show_progress="hidden")
        # Waits (without CPU) while the models load, so no limit: it must not hold a request slot from real work.
        demo.load(lab.watch_models, None, [model_status, summary], api_visibility="private", show_progress="hidden",
                  concurrency_limit=None)
    if start_analysis:
        lab.start_analysis()
    return demo


def serve(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, share: bool = False, concurrency: int = 4,
          block: bool = True):
    """Queue on (at most `concurrency` requests at once, 64 waiting), then launch; `block=False` returns at once."""
    demo.queue(default_concurrency_limit=concurrency, max_size=64)
    return demo.launch(server_name=host, server_port=port, share=share, theme=gr.themes.Soft(), css=CSS,
                       show_error=True, prevent_thread_lock=not block)


def bundled_model_dir() -> Path:
    """Where the bundled models are: `$MAE_HF_PRETRAINED`, else `pretrained/` next to this file (as
    `mae_hf.cli.pretrained_dir`, which is not imported here: it would import torch and transformers)."""
    return Path(os.environ.get("MAE_HF_PRETRAINED", Path(__file__).resolve().parent / "pretrained"))


# flag → (model_type in config.json, what the model is called in messages)
MODEL_KINDS = {"--dae": ("conv_dae", "denoising autoencoder (DAE)"), "--mae": ("vit_mae", "masked autoencoder (MAE)")}
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def check_model_source(source: str, flag: str, image_size: int = 28, num_channels: int = 1) -> str | None:
    """
    What is wrong with a `--dae` / `--mae` value, found without importing torch or transformers (so `python
    app.py` stops at once instead of after launching); None when it looks loadable. `mae_hf.loading` still has
    the last word when the models are loaded in the background.

    A local folder must hold config.json of the right `model_type` for `image_size`² × `num_channels` images,
    and weights; anything else must be a Hub id, which with `HF_HUB_OFFLINE=1` must be in the local Hub cache.
    """
    model_type, name = MODEL_KINDS[flag]
    path = Path(source).expanduser()
    fix = f"Train the bundled models with `make models`, or pass a model folder (set it with {flag})."
    if path.is_dir():
        where = f"Could not load the {name} from the folder {str(path)!r}"
        config_file = path / "config.json"
        if not config_file.is_file():
            return (f"{where}: it has no config.json. It must hold config.json and weights as written by "
                    f"`save_pretrained`. {fix}")
        try:
            config = json.loads(config_file.read_text())
        except (OSError, ValueError) as err:
            return f"{where}: its config.json cannot be read ({type(err).__name__}: {err}). {fix}"
        if config.get("model_type") != model_type:
            return (f"{source!r} holds a {config.get('model_type')!r} model, not a {name} (model_type {model_type!r}). "
                    f"Pass the right folder with {flag}.")
        size, channels = config.get("image_size", image_size), config.get("num_channels", num_channels)
        if (size, channels) != (image_size, num_channels):
            return (f"The {name} in {str(path)!r} takes {size}×{size}×{channels} images; this app needs "
                    f"{image_size}×{image_size}×{num_channels} (MNIST-like digits). Pass an MNIST model with {flag}.")
        if not any((path / f).is_file() for f in WEIGHT_FILES):
            return f"{where}: it has no weights ({', '.join(WEIGHT_FILES[::2])}). {fix}"
        return None
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    where = (f"Could not load the {name} from {source!r}, which is not a local folder (looked in "
             f"{str(path.resolve())!r})")
    try:
        validate_repo_id(source)
    except HFValidationError:
        return f"{where} nor a Hub id (`owner/name`). {fix}"
    if constants.HF_HUB_OFFLINE and not isinstance(try_to_load_from_cache(source, "config.json"), str):
        return (f"{where}, and as a Hub id it is not in the local cache while the Hub is switched off "
                f"(HF_HUB_OFFLINE=1). {fix}")
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dae", default=env.get("MAE_HF_DAE", str(bundled_model_dir() / "dae-mnist")),
                        help="DAE folder or Hub id (env MAE_HF_DAE)")
    parser.add_argument("--mae", default=env.get("MAE_HF_MAE", str(bundled_model_dir() / "mae-mnist")),
                        help="MAE folder or Hub id (env MAE_HF_MAE)")
    parser.add_argument("--host", default=env.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="interface to listen on; 0.0.0.0 on a Space (env GRADIO_SERVER_NAME)")
    parser.add_argument("--port", type=int, default=int(env.get("PORT", env.get("GRADIO_SERVER_PORT", 7860))),
                        help="port (env PORT or GRADIO_SERVER_PORT)")
    parser.add_argument("--share", action="store_true", default=env.get("GRADIO_SHARE", "") in ("1", "true", "True"),
                        help="also serve through a public gradio.live link (env GRADIO_SHARE=1)")
    parser.add_argument("--concurrency", type=int, default=int(env.get("MAE_HF_CONCURRENCY", 4)),
                        help="requests processed at once (env MAE_HF_CONCURRENCY)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """
    Check the model sources, build the page and serve it, then load the models in the background (see the module
    docstring). Returns 2 when a model source is plainly unusable; a model that fails later, while loading, is
    logged and shown in the page.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    start = time.perf_counter()
    problems = [p for p in (check_model_source(args.dae, "--dae"), check_model_source(args.mae, "--mae")) if p]
    if problems:
        logger.error("%s", "\n".join(problems))
        return 2
    models = BackgroundModels(args.dae, args.mae, torch_threads=1)
    demo = build_demo(models)
    serve(demo, host=args.host, port=args.port, share=args.share, concurrency=args.concurrency, block=False)
    logger.info("Serving %.1f s after start; loading the models in the background", time.perf_counter() - start)
    models.start()
    demo.block_thread()
    return 0


if __name__ == "__main__":
    sys.exit(main())
