"""Where the app's models come from, checked before anything heavy is imported: a folder's config.json or the
local Hub cache tell whether `--dae` / `--mae` can be loaded at all, so `python app.py` stops at once with a
message instead of after starting. `mae_hf.loading` has the last word when the models are loaded."""

import json
import os
from pathlib import Path

__all__ = ["bundled_model_dir", "bundled_pairs", "check_model_source", "profile_of_sources"]


def bundled_model_dir(repo_root: Path) -> Path:
    """Where the bundled models are: `$MAE_HF_PRETRAINED`, else `pretrained/` in the checkout."""
    return Path(os.environ.get("MAE_HF_PRETRAINED", repo_root / "pretrained"))


WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def bundled_pairs(models_dir: Path) -> dict[str, dict[str, str]]:
    """The sets of models bundled in `models_dir`, by dataset: folders named `<kind>-<dataset>` (`dae-mnist`,
    `mae-fashion`, ...) of registered kinds, grouped by dataset, MNIST first: `{"mnist": {"dae": path, "mae": path},
    ...}`."""
    from ..registry import MODEL_KINDS

    pairs: dict[str, dict[str, str]] = {}
    folders = sorted(p for p in Path(models_dir).glob("*-*") if (p / "config.json").is_file()) if models_dir else []
    for folder in folders:
        kind, dataset = folder.name.split("-", 1)
        if kind in MODEL_KINDS:
            pairs.setdefault(dataset, {})[kind] = str(folder)
    ordered = {k: {n: v[n] for n in MODEL_KINDS if n in v} for k, v in pairs.items()}
    return dict(sorted(ordered.items(), key=lambda item: item[0] != "mnist"))


def profile_of_sources(sources: dict) -> tuple:
    """The dataset profile of a set of models, from their local config.json files (`mae_hf.profiles`): (profile,
    None), or (None, a message) when they disagree; models from the Hub count as `"digits"` unless a local one says
    otherwise."""
    from ..profiles import profile_of_config

    found = {}
    for name, source in sources.items():
        config = Path(source).expanduser() / "config.json"
        if config.is_file():
            try:
                found[name] = profile_of_config(json.loads(config.read_text()))
            except (OSError, ValueError) as err:
                return None, f"{source!r}: {err}"
    names = {p.name for p in found.values()}
    if len(names) > 1:
        said = ", ".join(f"--{n}: {p.name}" for n, p in found.items())
        return None, f"The models were trained on different kinds of images ({said}); pass models of one dataset."
    if found:
        return next(iter(found.values())), None
    return profile_of_config({}), None


def check_model_source(
    source: str, name: str, image_size: int | None = None, num_channels: int | None = None
) -> str | None:
    """
    What is wrong with the source of the model of registered kind `name` (`--dae`, `--mae`, `--model NAME=...`),
    found without importing torch or transformers (so `python app.py` stops at once instead of after launching);
    None when it looks loadable. `mae_hf.loading` still has the last word when the models are loaded in the
    background.

    A local folder must hold config.json of the kind's `model_type` (for `image_size`² × `num_channels` images
    where given), and weights; anything else must be a Hub id, which with `HF_HUB_OFFLINE=1` must be in the local
    Hub cache.
    """
    from ..registry import MODEL_KINDS

    if name not in MODEL_KINDS:
        return f"Unknown model kind {name!r}; the registered ones are {', '.join(MODEL_KINDS)}."
    kind, flag = MODEL_KINDS[name], f"--{name}"
    model_type, what = kind.model_type, f"{kind.description} ({kind.label})"
    path = Path(source).expanduser()
    fix = f"Train the bundled models with `make models`, or pass a model folder (set it with {flag})."
    if path.is_dir():
        where = f"Could not load the {what} from the folder {str(path)!r}"
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
                f"{source!r} holds a {config.get('model_type')!r} model, not a {what} (model_type {model_type!r}). "
                f"Pass the right folder with {flag}."
            )
        size, channels = config.get("image_size"), config.get("num_channels")
        if (image_size and size != image_size) or (num_channels and channels != num_channels):
            return (
                f"The {what} in {str(path)!r} takes {size}×{size}×{channels} images; this app needs "
                f"{image_size}×{image_size}×{num_channels}. Pass a model trained on those with {flag}."
            )
        if not any((path / f).is_file() for f in WEIGHT_FILES):
            return f"{where}: it has no weights ({', '.join(WEIGHT_FILES[::2])}). {fix}"
        return None
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    where = (
        f"Could not load the {what} from {source!r}, which is not a local folder (looked in {str(path.resolve())!r})"
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
