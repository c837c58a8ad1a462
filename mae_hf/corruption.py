"""Pure corruption functions: Gaussian noise (the DAE's) and random patch masking (the MAE's).

Patch masking uses exactly ViTMAE's semantics for its `noise` argument: per-sample noise of shape (B, L) is
argsorted, the first `int(L * (1 - mask_ratio))` patches are kept. So one `noise` tensor gives the same mask to
`ViTMAEForPreTraining(pixel_values, noise=noise)` and to `mask_patches(pixel_values, noise, ...)`, and the same
masked image can be fed to the DAE.
"""

import torch

# Both corruptions live in the self-contained model file (they travel with `trust_remote_code`, and the DAE can be
# trained on either); this module is their public home.
from .modeling_dae import gaussian_corrupt as add_gaussian_noise
from .modeling_dae import mask_patches, mask_to_image, patch_mask_from_noise

__all__ = [
    "add_gaussian_noise",
    "random_patch_noise",
    "patch_mask_from_noise",
    "mask_to_image",
    "mask_patches",
    "spatial_order_noise",
]


def random_patch_noise(
    batch_size: int, num_patches: int, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """Uniform noise (B, L) in the form ViTMAE's `noise` argument takes; seeded through `generator`."""
    return torch.rand(batch_size, num_patches, generator=generator, device=device)


def spatial_order_noise(batch_size: int, num_patches: int, device=None) -> torch.Tensor:
    """Noise whose argsort is the identity: with mask ratio 0, ViTMAE keeps every token in spatial order."""
    return torch.arange(num_patches, dtype=torch.float32, device=device).expand(batch_size, num_patches).contiguous()
