"""Gradient saliency of a latent: |∂‖latent‖/∂pixel|, normalised to [0, 1] per image (the study's definition).

The same definition for both models, so they compare on one footing: the DAE's bottleneck and the MAE encoder's
output tokens. A pixel the latent cannot see (outside the DAE's receptive field, or in a patch the MAE masked)
gets exactly 0.
"""

import torch

from ..corruption import random_patch_noise, spatial_order_noise
from ..mae import check_pixels, evaluating, forward_encoder, num_patches

__all__ = ["latent_saliency", "model_saliency", "dae_saliency", "mae_saliency"]


def latent_saliency(encode, pixel_values: torch.Tensor) -> torch.Tensor:
    """
    Saliency of any encoder: `|∂ ‖encode(x)_b‖₂ / ∂x_b|`, channels summed, divided by its per-image maximum.

    Args:
        encode: callable (B, C, H, W) → (B, ...) latent; images must not interact (true for eval-mode models).
        pixel_values: (B, C, H, W).

    Returns:
        (B, H, W) in [0, 1] (all zeros for an image whose latent ignores every pixel).
    """
    x = pixel_values.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        latent = encode(x)
        norm = latent.flatten(1).norm(dim=1)  # (B,)
        (grad,) = torch.autograd.grad(norm.sum(), x)  # images are independent, so the sum separates them
    sal = grad.abs().sum(1)  # (B, H, W)
    peak = sal.flatten(1).amax(1).clamp_min(torch.finfo(sal.dtype).tiny)[:, None, None]
    return (sal / peak).detach()


def model_saliency(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """Saliency of any model's latent (its kind's `latent`, masking off) for clean inputs: (B, H, W) in [0, 1]."""
    from ..registry import kind_of

    kind = kind_of(model)
    with evaluating(model):
        return latent_saliency(lambda x: kind.latent(model, x), pixel_values)


def dae_saliency(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """
    Saliency of the DAE's bottleneck for clean inputs.

    Args:
        model: a `DAEModel`. pixel_values: (B, C, H, W) in [0, 1].

    Returns:
        (B, H, W) in [0, 1].
    """
    with evaluating(model):
        return latent_saliency(model.encode, pixel_values)


def mae_saliency(
    model,
    pixel_values: torch.Tensor,
    mask_ratio: float = 0.0,
    noise: torch.Tensor | None = None,
    seed: int | None = None,
) -> torch.Tensor:
    """
    Saliency of the MAE encoder's output (all tokens, CLS included) under a mask.

    Args:
        model: a `ViTMAEForPreTraining`. pixel_values: (B, C, H, W) in [0, 1].
        mask_ratio: fraction of patches removed; 0 = masking off (tokens in spatial order).
        noise: (B, L) ViTMAE noise fixing the mask (e.g. `MAEReconstruction.noise`); else drawn from `seed`.

    Returns:
        (B, H, W) in [0, 1]; exactly 0 inside masked patches.
    """
    check_pixels(model, pixel_values)
    b, length = pixel_values.shape[0], num_patches(model.config)
    if noise is None:
        if mask_ratio == 0.0:
            noise = spatial_order_noise(b, length)
        else:
            generator = torch.Generator().manual_seed(seed) if seed is not None else None
            noise = random_patch_noise(b, length, generator=generator)
    noise = noise.to(pixel_values.device)
    with evaluating(model):
        return latent_saliency(lambda x: forward_encoder(model, x, noise, mask_ratio).latent, pixel_values)
