"""mae_hf's Gradio app: draw a digit and watch a masked and a denoising autoencoder rebuild it.

    python app.py [--dae DIR_OR_HUB_ID] [--mae DIR_OR_HUB_ID] [--port N] [--share]

The same through environment variables on a Space: MAE_HF_DAE, MAE_HF_MAE, PORT / GRADIO_SERVER_PORT,
GRADIO_SHARE. Defaults: the bundled models in `pretrained/` (see `mae_hf.cli.pretrained_dir`).

This file only assembles tabs; each tab is a small function, each handler a plain function with an `api_name`
(`Handlers`), which passes the request to the model side, `mae_hf.app_backend.DigitLab` (so `gradio_client` can
call every one of them too).

Cold start: importing torch, transformers and `mae_hf` takes about 7 s of one CPU core, importing gradio and
building the page about 4 s, and Python imports run one at a time in a process. So `python app.py` checks the
model folders (cheaply, from config.json), then starts the model side in a process of its own (`ModelProcess`:
`python -m mae_hf.app_backend`) *before* it imports gradio; both run side by side on 2 cores, and the page is
served while the models load. Handlers called before the models are there wait for them (a toast says so), so an
early click gets its answer. `build_demo(models)` with models loaded in this process (tests, notebooks) runs the
same `DigitLab` here instead.
"""

import argparse
import atexit
import importlib.abc
import importlib.machinery
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Client
from pathlib import Path
from typing import TYPE_CHECKING

START = time.perf_counter()
HERE = Path(__file__).resolve().parent
logger = logging.getLogger("mae_hf.app")

if TYPE_CHECKING:  # the model side (imported by `build_demo` only for models loaded in this process)
    from mae_hf.app_backend import DigitLab
    from mae_hf.explorer import BackgroundAnalysis, ExplorerSettings
    from mae_hf.loading import LoadedModels


# --- the command line and the model sources (before gradio is imported) -------------------------------------------


def bundled_model_dir() -> Path:
    """Where the bundled models are: `$MAE_HF_PRETRAINED`, else `pretrained/` next to this file (as
    `mae_hf.cli.pretrained_dir`, which is not imported here: it would import torch and transformers)."""
    return Path(os.environ.get("MAE_HF_PRETRAINED", HERE / "pretrained"))


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



# --- the model process ---------------------------------------------------------------------------------------------

AUTHKEY_ENV = "MAE_HF_BACKEND_AUTHKEY"  # as `mae_hf.app_backend.AUTHKEY_ENV` (a test checks they match)


class ModelProcess:
    """
    The model side in a process of its own: `python -m mae_hf.app_backend`, which imports torch, transformers and
    `mae_hf`, loads both models (torch with `torch_threads` threads) and answers `DigitLab.call` requests on a local
    socket (a Unix socket, or a named pipe on Windows; authenticated with a random key).

    `call` has the signature and the answers of `DigitLab.call`, so `Handlers` works with either: it waits (up
    to `timeout` s) while the process starts, and says plainly when the process has stopped. Each thread gets
    its own connection, and the process answers each connection in a thread of its own. The process ends with
    this one (it watches its stdin), and at `close()`.
    """

    def __init__(self, dae: str | os.PathLike, mae: str | os.PathLike, torch_threads: int = 1,
                 timeout: float = 600.0):
        self.dae_source, self.mae_source = str(dae), str(mae)
        self.torch_threads, self.timeout = torch_threads, timeout
        self.process: subprocess.Popen | None = None
        self.address: str | None = None
        self._authkey = secrets.token_bytes(32)
        self._dir: str | None = None
        self._started: float | None = None
        self._up = False
        self._local = threading.local()
        self._lock = threading.Lock()

    def start(self) -> "ModelProcess":
        """Start the process (once); returns self at once."""
        with self._lock:
            if self.process is not None:
                return self
            self._dir = tempfile.mkdtemp(prefix="mae_hf-app-")
            self.address = (rf"\\.\pipe\mae_hf-{os.getpid()}-{secrets.token_hex(8)}" if sys.platform == "win32"
                            else os.path.join(self._dir, "models.sock"))
            env = dict(os.environ, **{AUTHKEY_ENV: self._authkey.hex()})
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p)  # as for app.py
            self._started = time.perf_counter()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mae_hf.app_backend", "--address", self.address, "--dae", self.dae_source,
                 "--mae", self.mae_source, "--torch-threads", str(self.torch_threads), "--started", str(time.time())],
                stdin=subprocess.PIPE, env=env,
            )
            atexit.register(self.close)
        return self

    def close(self) -> None:
        """Stop the process and remove its socket."""
        with self._lock:
            process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.stdin.close()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def _stopped(self) -> str | None:
        """Why the process cannot answer any more (None while it runs)."""
        if self.process is None:
            return "The model process is not running (`ModelProcess.start()` starts it)."
        code = self.process.poll()
        if code is None:
            return None
        return (f"The model process (`python -m mae_hf.app_backend`) stopped with exit code {code}; the app's log "
                "above says why. Restart the app.")

    def _connection(self, wait: bool):
        """This thread's connection, made now if need be (waiting up to `timeout` s while the process starts when
        `wait`); None when there is none to be had."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        deadline = time.monotonic() + (self.timeout if wait else 0.0)
        while self._stopped() is None:
            try:
                conn = Client(self.address, authkey=self._authkey)
            except OSError:  # not listening yet
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.05)
                continue
            self._local.conn, self._up = conn, True
            return conn
        return None

    def offline_status(self) -> dict | None:
        """The models' status while the process cannot answer (starting, or stopped); None when it can."""
        stopped = self._stopped()
        if stopped is not None:
            return {"ready": False, "failed": True, "message": f"**The models could not be loaded.** {stopped}"}
        if self._up or self._connection(wait=False) is not None:
            return None
        waited = time.perf_counter() - self._started
        return {"ready": False, "failed": False,
                "message": f"⏳ **Loading the models** (starting the model process: importing torch and transformers, "
                           f"{waited:.0f} s so far). Draw, upload or pick a digit meanwhile: it is reconstructed as "
                           "soon as they are ready."}

    def call(self, name: str, args: tuple = (), kwargs: dict | None = None) -> tuple:
        """`DigitLab.call` in the model process (see there for the answers)."""
        conn = self._connection(wait=True)
        if conn is None:
            return ("user_error", "The models could not be loaded",
                    self._stopped() or f"The model process did not answer within {self.timeout:.0f} s.")
        try:
            conn.send((name, tuple(args), kwargs or {}))
            return conn.recv()
        except (EOFError, OSError) as err:
            self._local.conn = None
            return ("user_error", "The models stopped",
                    self._stopped() or f"The connection to the model process broke ({type(err).__name__}).")


def start(argv: list[str] | None = None) -> "tuple[argparse.Namespace, ModelProcess | None]":
    """Parse the command line, check both model sources and start the model process. The process is None when a
    source is plainly unusable (the messages are logged)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    problems = [p for p in (check_model_source(args.dae, "--dae"), check_model_source(args.mae, "--mae")) if p]
    if problems:
        logger.error("%s", "\n".join(problems))
        return args, None
    return args, ModelProcess(args.dae, args.mae, torch_threads=1).start()


# `python app.py`: the model process starts here, before gradio is imported (see the module docstring).
STARTED = start() if __name__ == "__main__" else None
if STARTED is not None and STARTED[1] is None:
    sys.exit(2)  # a model source is plainly unusable (logged): no need to import gradio


# --- the page ------------------------------------------------------------------------------------------------------


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

EXAMPLES_DIR = HERE / "examples"
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

# The Latent tab's choices for the second map: (label, value), as `mae_hf.app_backend.FEATURE_NAMES` (a test checks).
MAE_FEATURE_CHOICES = [("MAE CLS token", "mae_cls"), ("MAE mean patch token", "mae_mean"), ("raw pixels", "raw_pixels")]
RADIUS_HEADERS = ["Features", "t-SNE radius", "Original-space radius", "Scale-free radius (original space)",
                  "Scale-free radius (t-SNE)"]
MEASURE_HEADERS = ["Features", "Dim", "Silhouette", "Trustworthiness", "kNN accuracy (k=5)", "Linear probe accuracy"]
METRICS_HEADERS = ["Model", "Corruption", "PSNR (dB)", "SSIM", "Masked-region PSNR (dB)", "Corrupted input PSNR (dB)"]
WEIGHTS_HEADERS = ["Model", "State", "Weights", "Near-zero (absolute)", "Near-zero (relative to layer std)"]


class Handlers:
    """
    The page's handlers, each a plain function with an `api_name`. Each passes its request to the model side
    (`DigitLab` in this process, or a `ModelProcess`: anything with their `call`) and turns the answer into
    gradio's terms: an `AppError` into a `gr.Error` with its title, a request made while the models load into a
    toast (and the answer once they are there), outputs that should stay as they are into `gr.skip()`.
    """

    def __init__(self, backend: "DigitLab | ModelProcess"):
        self.backend = backend
        self._models_ready = False

    def _call(self, name: str, *args):
        reply = self.backend.call(name, args)
        if reply[0] == "ok":
            return reply[1]
        if reply[0] == "user_error":
            raise gr.Error(reply[2], title=reply[1])
        raise gr.Error(reply[1], title="The app failed on this request")

    def models_status(self) -> dict:
        """The models: `{"ready", "failed", "message"}` (Markdown), without waiting."""
        return self.backend.offline_status() or self._call("status")

    def _wait_for_models(self) -> None:
        """A request before the models are loaded waits in the model side; its page says so (a toast)."""
        if self._models_ready:
            return
        status = self.models_status()
        self._models_ready = status["ready"]
        if not status["ready"] and not status["failed"]:
            gr.Info("The models are still loading (the app has just started): the answer comes as soon as they "
                    "are ready, in a few seconds.", duration=6, title="Loading the models")

    # -- the current digit -----------------------------------------------------------------------------------------

    def digit_from_sketch(self, sketch):
        """The drawing on the canvas → the 28×28 MNIST-style model input."""
        self._wait_for_models()
        return self._call("digit", sketch if sketch is not None else {})

    def digit_from_upload(self, image):
        """An uploaded picture (any size or mode) → the 28×28 MNIST-style model input."""
        self._wait_for_models()
        return self._call("digit", image)

    def reconstruct(self, image, mask_ratio: float = 0.75, noise_factor: float = 0.5, seed: int = 0,
                    corruption: str = "own"):
        """
        Corrupt the digit and reconstruct it with both models.

        `image`: any picture of a digit (a 28×28 one is taken as MNIST-formatted); `corruption`: "own", "mask"
        or "noise". Returns the model input, the MAE's input, reconstruction and pasted image, the DAE's input and
        reconstruction (each enlarged 4×) and the PSNR/SSIM table. Called while the models are still loading, it
        waits for them.
        """
        self._wait_for_models()
        return self._call("reconstruct", image, mask_ratio, noise_factor, seed, corruption)

    def reconstruct_if_ready(self, image, mask_ratio, noise_factor, seed, corruption):
        """
        The UI's reconstruction (after a new digit or a changed control): like `reconstruct`, but it leaves the
        model-input image alone (it is already shown; re-sending the same picture makes gradio rewrite the file
        the browser may be fetching) and quietly does nothing while there is no digit yet.
        """
        if image is None:
            return [gr.skip()] * 7
        return [gr.skip(), *self.reconstruct(image, mask_ratio, noise_factor, seed, corruption)[1:]]

    def attention(self, image, mask_ratio: float = 0.75, noise_factor: float = 0.5, seed: int = 0,
                  corruption: str = "own"):
        """
        The current digit's MAE CLS attention per layer and head and its rollout (masking off, and under the
        Reconstruct tab's mask for this seed), and DAE / MAE saliency overlays.

        Returns: the attention figure without mask, the one under the mask, the overlay row (all PNG images) and a
        Markdown summary. `noise_factor` is accepted so the inputs match the Reconstruct tab (saliency is taken on
        the clean digit).
        """
        if image is None:
            raise gr.Error("There is no digit yet: draw, upload or pick one on the Reconstruct tab.", title="No digit")
        self._wait_for_models()
        return self._call("attention", image, mask_ratio, seed, corruption)

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
        offline = self.backend.offline_status()
        if offline is not None:
            return offline["message"], None, None, None, None, None
        return self._call("latent_space", image, mae_features)

    def latent_space_if_ready(self, image, mae_features):
        """The Latent tab after the digit changed: quietly waits while the analysis is running."""
        if not self.analysis_status()["ready"]:
            return [gr.skip()] * 6
        return self.latent_space(image, mae_features)

    # -- the test set and the models -------------------------------------------------------------------------------

    def analysis_status(self) -> dict:
        """The background analysis: `{"ready", "failed", "progress" (0–1), "stage", "message"}`."""
        offline = self.backend.offline_status()
        if offline is not None:
            return {"ready": False, "failed": offline["failed"], "progress": 0.0,
                    "stage": "failed" if offline["failed"] else "loading the models", "message": offline["message"]}
        return self._call("analysis_status")

    def _dataset_view(self, name: str, n_outputs: int):
        offline = self.backend.offline_status()
        if offline is not None:
            return offline["message"], *(None,) * (n_outputs - 1)
        return self._call(name)

    def metrics(self):
        """Test-set PSNR / SSIM histograms of both models under both corruptions, and the summary table.
        Returns: status Markdown, PSNR histogram (PNG), SSIM histogram (PNG), table (None until ready)."""
        return self._dataset_view("metrics", 4)

    def weights(self):
        """Per-layer weight histograms (trained vs init) of both models and the near-zero table.
        Returns: status Markdown, DAE histograms (PNG), MAE histograms (PNG), table (None until ready)."""
        return self._dataset_view("weights", 4)

    def verdicts(self) -> str:
        """The study's claims H1–H3 with the verdict under each measure, as Markdown (the status until ready)."""
        offline = self.backend.offline_status()
        return offline["message"] if offline is not None else self._call("verdicts")

    def refresh(self, image, mae_features):
        """Timer tick: the dataset-level tabs, filled in (and the timer stopped) once the analysis is ready."""
        status = self.analysis_status()
        done = status["ready"] or status["failed"]
        return (*self.metrics(), *self.latent_space(image if done else None, mae_features), *self.weights(),
                self.verdicts(), gr.Timer(active=not done))

    def watch_models(self):
        """
        Page load: the model-loading banner, updated until the models are loaded (then hidden, or showing why
        they could not be), and the About tab's model summary once they are there.
        """
        status = self.models_status()
        while not status["ready"] and not status["failed"]:
            yield gr.Markdown(status["message"], visible=True), gr.skip()
            time.sleep(0.5)
            status = self.models_status()
        summary = self._call("model_summary") if status["ready"] else status["message"]
        yield gr.Markdown(status["message"], visible=status["failed"]), summary


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


def reconstruct_tab(lab: Handlers, examples: list[Path]) -> DigitControls:
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


STUDY_JSON = HERE / "docs" / "study" / "study.json"
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


def about_tab(models_status: dict) -> tuple[gr.Markdown, gr.Markdown]:
    """What the two models are, where they were loaded from, their cards, and the claims with our verdicts.
    Returns the model summary (filled in once the models are loaded) and the verdicts Markdown (filled in by the
    background analysis)."""
    gr.Markdown(
        "**mae_hf** compares a *masked autoencoder* (transformers' `ViTMAEForPreTraining`: hides most 4×4 "
        "patches and predicts them from the rest) with a *convolutional denoising autoencoder* (adds Gaussian "
        "noise and learns to remove it) on MNIST digits. Both are ordinary Hugging Face models: "
        "`ViTMAEForPreTraining.from_pretrained(...)` and `AutoModel.from_pretrained(..., trust_remote_code=True)`."
    )
    summary = gr.Markdown(models_status["message"], elem_id="model-summary")  # `Handlers.watch_models` fills it
    gr.Markdown("### The study's claims, and our verdicts\n\nThe study behind this project claimed (H1) MAE latents "
                "cluster by class more tightly, (H2) the DAE has more near-zero weights so it \"learns less\", and "
                "(H3) the MAE reconstructs better. Each is checked under every measure that bears on it.")
    verdicts = gr.Markdown(elem_id="verdicts")
    gr.Markdown(study_grid_markdown(), elem_id="study-grid")
    return summary, verdicts


def _plot_image(label: str, elem_id: str | None = None) -> gr.Image:
    return gr.Image(label=label, format="png", interactive=False, buttons=["download"], elem_id=elem_id)


def metrics_tab() -> list:
    """Test-set PSNR / SSIM distributions and the summary table. Returns its outputs (for `Handlers.metrics`)."""
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


def latent_tab(lab: Handlers, controls: DigitControls) -> tuple[list, gr.Dropdown]:
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


def attention_tab(lab: Handlers, controls: DigitControls, tab: gr.Tab) -> None:
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


def build_demo(models: "LoadedModels | DigitLab | ModelProcess", examples_dir: Path = EXAMPLES_DIR,
               analysis: "BackgroundAnalysis | ExplorerSettings | None" = None,
               start_analysis: bool = True) -> gr.Blocks:
    """
    The whole app as `gr.Blocks` (not launched): one small function per tab.

    Tabs on the current digit (latent placement, attention) take the Reconstruct tab's `DigitControls` as
    inputs. Tabs on the test set (metrics, latent maps, weights, verdicts) show the `BackgroundAnalysis`, which
    starts once the models are loaded (`start_analysis`; a `ModelProcess` always starts it) and fills them in by a
    timer when done, so the app serves at once.

    Args:
        models: the model side: `LoadedModels` (run here by a `DigitLab` made with `analysis`), a `DigitLab`
            (`mae_hf.app_backend`; its models may still be loading), or a `ModelProcess` (building imports neither
            torch nor transformers; a banner shows the loading until the models are there).
        analysis: a `BackgroundAnalysis`, or `ExplorerSettings` for one (default: `ExplorerSettings.from_env()`).
    """
    backend = models
    if not hasattr(models, "call"):
        from mae_hf.app_backend import DigitLab

        backend = DigitLab(models, analysis)
    lab = Handlers(backend)
    status = lab.models_status()
    with gr.Blocks(title="mae_hf: masked vs denoising autoencoders") as demo:
        gr.Markdown("# Masked vs denoising autoencoder on MNIST", elem_id="title")
        gr.Markdown(
            "Draw a digit, upload one or pick one below. The **MAE** sees only some patches and fills in the rest; "
            "the **DAE** sees the whole digit under noise and cleans it up. Same digit, same seed, side by side."
        )
        model_status = gr.Markdown(status["message"], visible=status["failed"], elem_id="model-status")
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
                summary, verdicts = about_tab(status)
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
    if start_analysis and hasattr(backend, "start_analysis"):  # in this process (a ModelProcess starts its own)
        backend.start_analysis()
    return demo




def serve(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, share: bool = False, concurrency: int = 4,
          block: bool = True):
    """Queue on (at most `concurrency` requests at once, 64 waiting), then launch; `block=False` returns at once."""
    demo.queue(default_concurrency_limit=concurrency, max_size=64)
    return demo.launch(server_name=host, server_port=port, share=share, theme=gr.themes.Soft(), css=CSS,
                       show_error=True, prevent_thread_lock=not block)


def main(argv: list[str] | None = None) -> int:
    """
    Check the model sources and start the model process (`start`; `python app.py` did both before importing
    gradio), then build the page and serve it. Returns 2 when a model source is plainly unusable; a model that
    fails later, while loading, is logged and shown in the page.
    """
    args, models = STARTED if argv is None and STARTED is not None else start(argv)
    if models is None:
        return 2
    demo = build_demo(models)
    serve(demo, host=args.host, port=args.port, share=args.share, concurrency=args.concurrency, block=False)
    logger.info("Serving %.1f s after start; the models are loading in their own process", time.perf_counter() - START)
    try:
        demo.block_thread()
    finally:
        models.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
