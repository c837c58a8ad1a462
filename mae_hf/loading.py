"""Load the two trained models from a local folder or a Hub id, with errors that say what was tried.

The MAE is loaded with eager attention, so attention maps (`mae_attentions`, rollout) come from the same
weights without switching implementations or loading a second copy.
"""

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from torch import nn

logger = logging.getLogger(__name__)

__all__ = [
    "ModelLoadError",
    "LoadedModels",
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


@contextlib.contextmanager
def no_progress_bars():
    """transformers' and huggingface_hub's progress bars off for a moment (loading or saving two small models prints
    no "Loading weights" bar); restored afterwards."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
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


def _load(source: str | os.PathLike, flag: str, model_type: str, article: str, name: str, kind: str, load):
    """Refuse a local folder of another model type, then `load(source)` in eval mode, explaining any failure."""
    source = str(source)
    found = _local_model_type(Path(source).expanduser())
    if found is not None and found != model_type:
        raise ModelLoadError(
            f"{source!r} holds a {found!r} model, not {article} {name} (model_type {model_type!r}). "
            f"Pass the {kind}'s folder with {flag}."
        )
    try:
        with no_progress_bars():
            model = load(source)
    except Exception as err:  # noqa: BLE001 - from_pretrained raises OSError, ValueError, EnvironmentError, ...
        raise _explain(f"{name} ({kind})", source, err, flag) from err
    logger.info("Loaded the %s from %s (%d parameters)", kind, source, count_parameters(model))
    return model.eval()


def load_dae(source: str | os.PathLike, flag: str = "--dae"):
    """
    Load a `DAEModel` (a folder written by `save_pretrained`, or a Hub id) in eval mode.

    Raises:
        ModelLoadError: naming the folder or id tried and what was wrong (missing, not a DAE, unreadable).
    """
    from .modeling_dae import DAEModel

    return _load(source, flag, "conv_dae", "the", "denoising autoencoder", "DAE", DAEModel.from_pretrained)


def load_mae(source: str | os.PathLike, flag: str = "--mae"):
    """
    Load a `ViTMAEForPreTraining` (a folder or a Hub id) in eval mode, with eager attention so attention maps
    are available from the same weights.

    Raises:
        ModelLoadError: naming the folder or id tried and what was wrong (missing, not a ViTMAE, unreadable).
    """
    from transformers import ViTMAEForPreTraining

    def load(path: str):
        return ViTMAEForPreTraining.from_pretrained(path, attn_implementation="eager")

    return _load(source, flag, "vit_mae", "a", "masked autoencoder", "MAE", load)


@dataclass
class LoadedModels:
    """Both models and where they came from (shown in the app)."""

    dae: nn.Module
    mae: nn.Module
    dae_source: str
    mae_source: str

    def check_compatible(self, image_size: int = 28, num_channels: int = 1) -> None:
        """Raise `ModelLoadError` unless both models take `image_size`² × `num_channels` images."""
        for name, model, flag in (("DAE", self.dae, "--dae"), ("MAE", self.mae, "--mae")):
            got = (model.config.image_size, model.config.num_channels)
            if got != (image_size, num_channels):
                raise ModelLoadError(
                    f"The {name} takes {got[0]}×{got[0]}×{got[1]} images; this app needs {image_size}×{image_size}"
                    f"×{num_channels} (MNIST-like digits). Pass an MNIST model with {flag}."
                )


def load_models(dae: str | os.PathLike, mae: str | os.PathLike) -> LoadedModels:
    """Load both models (see `load_dae`, `load_mae`); raises `ModelLoadError` naming every source that failed."""
    models, errors = {}, []
    for name, loader, source in (("dae", load_dae, dae), ("mae", load_mae, mae)):
        try:
            models[name] = loader(source)
        except ModelLoadError as err:
            errors.append(str(err))
    if errors:
        raise ModelLoadError("\n".join(errors))
    return LoadedModels(dae=models["dae"], mae=models["mae"], dae_source=str(dae), mae_source=str(mae))
