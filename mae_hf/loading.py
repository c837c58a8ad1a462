"""Load trained models of any registered kind (`mae_hf.registry`) from a local folder or a Hub id, with errors that
say what was tried.

Each kind loads its own way (the MAE with eager attention, so attention maps come from the same weights without
switching implementations or loading a second copy).
"""

import contextlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from torch import nn

logger = logging.getLogger(__name__)

__all__ = [
    "ModelLoadError",
    "LoadedModels",
    "load_model",
    "load_dae",
    "load_mae",
    "load_models",
    "count_parameters",
    "no_progress_bars",
]


class ModelLoadError(ValueError):
    """A model that could not be loaded; the message names what was tried and how to fix it."""


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


_BARS_LOCK = threading.Lock()
_BARS = {"open": 0, "were_on": True}  # `no_progress_bars` blocks open (in any thread), and the state before them


@contextlib.contextmanager
def no_progress_bars():
    """transformers' and huggingface_hub's progress bars off while any thread is inside such a block (loading or
    saving small models prints no "Loading weights" bar, also when several sets of models load at once); restored
    when the last block ends."""
    from transformers.utils import logging as hf_logging

    with _BARS_LOCK:
        if _BARS["open"] == 0:
            _BARS["were_on"] = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
        _BARS["open"] += 1
    try:
        yield
    finally:
        with _BARS_LOCK:
            _BARS["open"] -= 1
            if _BARS["open"] == 0 and _BARS["were_on"]:
                hf_logging.enable_progress_bar()


def _local_model_type(path: Path) -> str | None:
    config = path / "config.json"
    if not config.is_file():
        return None
    try:
        return json.loads(config.read_text()).get("model_type")
    except (OSError, json.JSONDecodeError):
        return None


def _explain(kind: str, source: str, err: Exception, flag: str) -> ModelLoadError:
    path = Path(source).expanduser()
    if path.exists():
        where = f"the folder {str(path)!r}"
        hint = "It must hold config.json and model.safetensors as written by `save_pretrained`."
    else:
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        where = f"{source!r}, which is not a local folder (looked in {str(path.resolve())!r}) and was tried as a Hub id"
        hint = (
            "The Hub is switched off (HF_HUB_OFFLINE=1)." if offline else "Check the id and your network."
        ) + " Train the bundled models with `make models`, or pass a model folder."
    return ModelLoadError(
        f"Could not load the {kind} from {where}: {type(err).__name__}: {err}. {hint} (set it with {flag})"
    )


def load_model(name: str, source: str | os.PathLike, flag: str | None = None):
    """
    Load a model of the registered kind `name` (a folder written by `save_pretrained`, or a Hub id) in eval mode.

    Raises:
        ModelLoadError: naming the folder or id tried and what was wrong (missing, another kind, unreadable).
    """
    from .registry import MODEL_KINDS

    if name not in MODEL_KINDS:
        raise ModelLoadError(f"Unknown model kind {name!r}; the registered ones are {', '.join(MODEL_KINDS)}.")
    kind, source, flag = MODEL_KINDS[name], str(source), flag or f"--{name}"
    found = _local_model_type(Path(source).expanduser())
    if found is not None and found != kind.model_type:
        raise ModelLoadError(
            f"{source!r} holds a {found!r} model, not a {kind.description} (model_type {kind.model_type!r}). "
            f"Pass the {kind.label}'s folder with {flag}."
        )
    try:
        with no_progress_bars():
            model = kind.load(source)
    except Exception as err:  # noqa: BLE001 - from_pretrained raises OSError, ValueError, EnvironmentError, ...
        raise _explain(f"{kind.description} ({kind.label})", source, err, flag) from err
    logger.info("Loaded the %s from %s (%d parameters)", kind.label, source, count_parameters(model))
    return model.eval()


def load_dae(source: str | os.PathLike, flag: str = "--dae"):
    """`load_model("dae", ...)`: a `DAEModel` in eval mode."""
    return load_model("dae", source, flag)


def load_mae(source: str | os.PathLike, flag: str = "--mae"):
    """`load_model("mae", ...)`: a `ViTMAEForPreTraining` in eval mode, with eager attention so attention maps are
    available from the same weights."""
    return load_model("mae", source, flag)


@dataclass
class LoadedModels:
    """Models by kind name and where each came from (shown in the app): `models["dae"]`, `sources["dae"]`."""

    models: dict
    sources: dict

    def __getitem__(self, name: str):
        return self.models[name]

    def check_compatible(self, image_size: int | None = None, num_channels: int | None = None) -> tuple[int, int]:
        """The (image_size, num_channels) all the models take; `ModelLoadError` unless they agree with each other
        (and with `image_size` / `num_channels` where given)."""
        shapes = {name: (m.config.image_size, m.config.num_channels) for name, m in self.models.items()}
        wanted = next(iter(shapes.values()))
        wanted = (image_size or wanted[0], num_channels or wanted[1])
        for name, got in shapes.items():
            if got != wanted:
                raise ModelLoadError(
                    f"The {name.upper()} takes {got[0]}×{got[0]}×{got[1]} images; the other models (or this app) "
                    f"{wanted[0]}×{wanted[0]}×{wanted[1]}. Pass models trained on the same images (--{name})."
                )
        return wanted


def load_models(sources: dict) -> LoadedModels:
    """Load every model of `sources` (`{kind name: folder or Hub id}`, see `load_model`); raises `ModelLoadError`
    naming every source that failed."""
    models, errors = {}, []
    for name, source in sources.items():
        try:
            models[name] = load_model(name, source)
        except ModelLoadError as err:
            errors.append(str(err))
    if errors:
        raise ModelLoadError("\n".join(errors))
    return LoadedModels(models=models, sources={name: str(source) for name, source in sources.items()})
