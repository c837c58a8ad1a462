"""Latent features of the models (and raw pixels as the baseline), as (N, D) float32 arrays: each model kind says
which feature sets it gives (`mae_hf.registry.ModelKind.features`). The built-in ones, by key:
- `raw_pixels`: the flattened image, the baseline every representation should beat.
- `dae`: the DAE's flattened bottleneck (8×3×3 = 72 values for 28×28 inputs).
- `mae_cls`: the MAE encoder's CLS token, masking off.
- `mae_mean`: the mean of the MAE's patch tokens, masking off (order-free, so spatial order does not matter).
- `mae_masked_flat`: **the study's variant** — the encoder's output under 75% random masking, flattened. ViTMAE
  keeps the visible tokens in shuffled order, so feature j is a different patch in every image; kept only to
  reproduce the study's table.
"""

import numpy as np
import torch

from ..corruption import random_patch_noise
from ..mae import evaluating, extract_mae_latents, forward_encoder, num_patches
from ..registry import kind_of

__all__ = [
    "extract_dae_latents",
    "extract_mae_features",
    "extract_mae_masked_flat",
    "raw_pixel_features",
    "extract_features",
    "extract_feature_sets",
]


@torch.no_grad()
def extract_dae_latents(model, pixel_values: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """
    The DAE's bottleneck on clean images, flattened.

    Args:
        model: a `DAEModel`.
        pixel_values: (N, C, H, W) in [0, 1].

    Returns:
        (N, C_latent * H_latent * W_latent) float32, e.g. (N, 72) for 28×28.
    """
    with evaluating(model):
        parts = [
            model.encode(pixel_values[i : i + batch_size]).flatten(1) for i in range(0, len(pixel_values), batch_size)
        ]
    return torch.cat(parts).numpy().astype(np.float32)


def extract_mae_features(model, pixel_values: torch.Tensor, batch_size: int = 256) -> dict[str, np.ndarray]:
    """
    The MAE's honest features: masking off, tokens in spatial order.

    Returns:
        `{"mae_cls": (N, D), "mae_mean": (N, D)}` float32 — the CLS token and the mean of the patch tokens.
    """
    cls, mean = [], []
    for i in range(0, len(pixel_values), batch_size):
        tokens = extract_mae_latents(model, pixel_values[i : i + batch_size])  # (B, 1+L, D)
        cls.append(tokens[:, 0])
        mean.append(tokens[:, 1:].mean(1))
    return {
        "mae_cls": torch.cat(cls).numpy().astype(np.float32),
        "mae_mean": torch.cat(mean).numpy().astype(np.float32),
    }


@torch.no_grad()
def extract_mae_masked_flat(
    model, pixel_values: torch.Tensor, mask_ratio: float = 0.75, seed: int = 0, batch_size: int = 256
) -> tuple[np.ndarray, torch.Tensor]:
    """
    The study's MAE latent: the encoder output under random masking, in ViTMAE's shuffled order, flattened.

    Args:
        model: a `ViTMAEForPreTraining`.
        pixel_values: (N, C, H, W) in [0, 1].
        mask_ratio: fraction of patches removed (the study used 0.75).
        seed: seeds the random masks.

    Returns:
        (features (N, (1 + K) * D) float32 with K = int(L * (1 - mask_ratio)) kept tokens, mask (N, L) with
        1 = removed).
    """
    n, length = len(pixel_values), num_patches(model.config)
    noise = random_patch_noise(n, length, generator=torch.Generator().manual_seed(seed))
    feats, masks = [], []
    with evaluating(model):
        for i in range(0, n, batch_size):
            out = forward_encoder(model, pixel_values[i : i + batch_size], noise[i : i + batch_size], mask_ratio)
            feats.append(out.latent.flatten(1))  # (B, (1+K)*D), tokens in shuffled order
            masks.append(out.mask)
    return torch.cat(feats).numpy().astype(np.float32), torch.cat(masks)


def raw_pixel_features(pixel_values: torch.Tensor) -> np.ndarray:
    """The baseline feature set: each image flattened, (N, C*H*W) float32."""
    return pixel_values.flatten(1).numpy().astype(np.float32)


def extract_features(models: dict, pixel_values: torch.Tensor, masked_ratio: float = 0.75, seed: int = 0):
    """
    Every feature set of every model for the same images: raw pixels, then each model's sets (its kind's
    `features`).

    Args:
        models: `{name: model}`. masked_ratio / seed: the study's masked-flattened MAE latent.

    Returns:
        `{key: (N, D_key) float32}`.
    """
    feats = {"raw_pixels": raw_pixel_features(pixel_values)}
    for model in models.values():
        feats |= kind_of(model).features(model, pixel_values, seed=seed, study_mask_ratio=masked_ratio)
    return feats


def extract_feature_sets(models: dict, pixel_values: torch.Tensor, feature_sets) -> dict[str, np.ndarray]:
    """
    Placeable feature sets for new images (the same extraction the maps were fit on), each model run once.

    Args:
        models: `{name: model}`. pixel_values: (B, C, H, W) in [0, 1]. feature_sets: placeable sets of these
            models' kinds (`mae_hf.registry.placeable_features`), or `"raw_pixels"`.

    Returns:
        `{feature_set: (B, D) float32}`.
    """
    wanted = set(feature_sets)
    out = {"raw_pixels": raw_pixel_features(pixel_values)} if "raw_pixels" in wanted else {}
    for model in models.values():
        keys = wanted & set(kind_of(model).placeable)
        if keys:
            out |= kind_of(model).features(model, pixel_values, keys=tuple(keys))
    unknown = wanted - set(out)
    if unknown:
        raise ValueError(f"No model here places an image into {sorted(unknown)}.")
    return out
