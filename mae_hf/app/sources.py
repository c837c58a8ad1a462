"""Where the app's models come from, checked before anything heavy is imported: a folder's config.json or the
local Hub cache tell whether `--dae` / `--mae` can be loaded at all, so `python app.py` stops at once with a
message instead of after starting. `mae_hf.loading` has the last word when the models are loaded."""

import json
import os
from pathlib import Path

__all__ = ["MODEL_KINDS", "bundled_model_dir", "check_model_source"]


def bundled_model_dir(repo_root: Path) -> Path:
    """Where the bundled models are: `$MAE_HF_PRETRAINED`, else `pretrained/` in the checkout."""
    return Path(os.environ.get("MAE_HF_PRETRAINED", repo_root / "pretrained"))


# flag → (model_type in config.json, what the model is called in messages)
MODEL_KINDS = {"--dae": ("conv_dae", "denoising autoencoder (DAE)"), "--mae": ("vit_mae", "masked autoencoder (MAE)")}
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


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
            return (
                f"{where}: it has no config.json. It must hold config.json and weights as written by "
                f"`save_pretrained`. {fix}"
            )
        try:
            config = json.loads(config_file.read_text())
        except (OSError, ValueError) as err:
            return f"{where}: its config.json cannot be read ({type(err).__name__}: {err}). {fix}"
        if config.get("model_type") != model_type:
            return (
                f"{source!r} holds a {config.get('model_type')!r} model, not a {name} (model_type {model_type!r}). "
                f"Pass the right folder with {flag}."
            )
        size, channels = config.get("image_size", image_size), config.get("num_channels", num_channels)
        if (size, channels) != (image_size, num_channels):
            return (
                f"The {name} in {str(path)!r} takes {size}×{size}×{channels} images; this app needs "
                f"{image_size}×{image_size}×{num_channels} (MNIST-like digits). Pass an MNIST model with {flag}."
            )
        if not any((path / f).is_file() for f in WEIGHT_FILES):
            return f"{where}: it has no weights ({', '.join(WEIGHT_FILES[::2])}). {fix}"
        return None
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    where = (
        f"Could not load the {name} from {source!r}, which is not a local folder (looked in {str(path.resolve())!r})"
    )
    try:
        validate_repo_id(source)
    except HFValidationError:
        return f"{where} nor a Hub id (`owner/name`). {fix}"
    if constants.HF_HUB_OFFLINE and not isinstance(try_to_load_from_cache(source, "config.json"), str):
        return (
            f"{where}, and as a Hub id it is not in the local cache while the Hub is switched off "
            f"(HF_HUB_OFFLINE=1). {fix}"
        )
    return None
