"""The models a `TrainingConfig` describes, built correctly, and their optimiser."""

import torch

from ..configuration_dae import DAEConfig
from ..evaluation import DEFAULT_NOISE_FACTOR
from ..mae import MAE_PRESETS, build_mae
from ..modeling_dae import DAEModel
from .config import ConfigurationError, TrainingConfig

__all__ = ["mae_preset_for", "build_model", "build_optimizer"]


def mae_preset_for(image_size: int, num_channels: int) -> str | None:
    """The `MAE_PRESETS` name for images of this size and channels (`mnist`: 28×28×1, `cifar10`: 32×32×3), or None."""
    return next(
        (n for n, p in MAE_PRESETS.items() if (p["image_size"], p["num_channels"]) == (image_size, num_channels)), None
    )


def build_model(config: TrainingConfig, image_size: int, num_channels: int):
    """
    The model `config` describes, for images of the dataset's size: the MAE only through `build_mae` (sin-cos
    positions set), the DAE through `DAEConfig`/`DAEModel`. Raises `ConfigurationError` when the MAE preset (or
    an override) does not match the images.
    """
    overrides = dict(config.config_overrides)
    if config.model == "mae":
        if config.corruption == "noise":  # the ViT + Gaussian noise cell: masking off, noise on every patch
            overrides.update(
                mask_ratio=0.0,
                corruption="noise",
                noise_factor=DEFAULT_NOISE_FACTOR if config.noise_factor is None else config.noise_factor,
            )
        elif config.mask_ratio is not None:
            overrides["mask_ratio"] = config.mask_ratio
        preset = {**MAE_PRESETS[config.preset], **overrides}
        if (preset["image_size"], preset["num_channels"]) != (image_size, num_channels):
            matching = mae_preset_for(image_size, num_channels)
            hint = f"use --preset {matching}" if matching else "set image_size/num_channels in --config_overrides"
            raise ConfigurationError(
                f"MAE preset {config.preset!r} expects {preset['image_size']}x{preset['image_size']}x"
                f"{preset['num_channels']} images but dataset {config.dataset!r} has {image_size}x{image_size}x"
                f"{num_channels}; {hint}."
            )
        try:
            return build_mae(config.preset, seed=config.seed, **overrides)
        except ValueError as err:
            raise ConfigurationError(str(err)) from err
    overrides.setdefault("image_size", image_size)
    overrides.setdefault("num_channels", num_channels)
    if (overrides["image_size"], overrides["num_channels"]) != (image_size, num_channels):
        raise ConfigurationError(
            f"--config_overrides asks for {overrides['image_size']}x{overrides['image_size']}x"
            f"{overrides['num_channels']} but dataset {config.dataset!r} has {image_size}x{image_size}x{num_channels}."
        )
    overrides["corruption"] = config.corruption
    if config.noise_factor is not None:
        overrides["noise_factor"] = config.noise_factor
    if config.mask_ratio is not None:
        overrides["mask_ratio"] = config.mask_ratio
    try:
        dae_config = DAEConfig(**overrides)
    except (TypeError, ValueError) as err:
        raise ConfigurationError(str(err)) from err
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        return DAEModel(dae_config)


def build_optimizer(model, config: TrainingConfig, device_type: str) -> torch.optim.AdamW:
    """
    AdamW with weight decay on weight matrices and kernels only (not biases, norms, cls/mask tokens), as the
    original MAE; fused (one kernel instead of a Python loop over parameters) on CPU and CUDA.
    """
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim <= 1 or "token" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.learning_rate, fused=device_type in ("cpu", "cuda"))
