"""Pure corruption functions: Gaussian noise (the DAE's) and random patch masking (the MAE's).

Patch masking uses exactly ViTMAE's semantics for its `noise` argument: per-sample noise of shape (B, L) is
argsorted, the first `int(L * (1 - mask_ratio))` patches are kept. So one `noise` tensor gives the same mask to
`ViTMAEForPreTraining(pixel_values, noise=noise)` and to `mask_patches(pixel_values, noise, ...)`, and the same
masked image can be fed to the DAE.
"""

import torch

# The Gaussian corruption lives in the self-contained model file (it travels with `trust_remote_code`);
# this module is its public home.
from .modeling_dae import gaussian_corrupt as add_gaussian_noise

__all__ = [
    "add_gaussian_noise",
    "random_patch_noise",
    "patch_mask_from_noise",
    "mask_to_image",
    "mask_patches",
    "spatial_order_noise",
]


def _check_ratio(mask_ratio: float) -> None:
    if not 0.0 <= float(mask_ratio) < 1.0:
        raise ValueError(f"`mask_ratio` must be in [0, 1), got {mask_ratio}.")


def random_patch_noise(
    batch_size: int, num_patches: int, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """Uniform noise (B, L) in the form ViTMAE's `noise` argument takes; seeded through `generator`."""
    return torch.rand(batch_size, num_patches, generator=generator, device=device)


def spatial_order_noise(batch_size: int, num_patches: int, device=None) -> torch.Tensor:
    """Noise whose argsort is the identity: with mask ratio 0, ViTMAE keeps every token in spatial order."""
    return torch.arange(num_patches, dtype=torch.float32, device=device).expand(batch_size, num_patches).contiguous()


def patch_mask_from_noise(noise: torch.Tensor, mask_ratio: float) -> torch.Tensor:
    """
    ViTMAE's mask for a given noise.

    Args:
        noise: (B, L) noise; lower values are kept.
        mask_ratio: fraction of patches to remove, in [0, 1).

    Returns:
        mask: (B, L) float, 0 is keep, 1 is remove; exactly `L - int(L * (1 - mask_ratio))` ones per row.
    """
    _check_ratio(mask_ratio)
    if noise.ndim != 2:
        raise ValueError(f"`noise` must have shape (B, L), got {tuple(noise.shape)}.")
    batch_size, length = noise.shape
    len_keep = int(length * (1 - mask_ratio))
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    mask = torch.ones(batch_size, length, device=noise.device)
    mask[:, :len_keep] = 0
    return torch.gather(mask, 1, ids_restore)  # (B, L) in spatial order


def mask_to_image(mask: torch.Tensor, patch_size: int, image_size: int | tuple[int, int]) -> torch.Tensor:
    """
    Patch mask (B, L) → pixel mask (B, 1, H, W), patches in row-major order as ViTMAE's `patchify`.
    """
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    gh, gw = h // patch_size, w // patch_size
    if mask.ndim != 2 or mask.shape[1] != gh * gw:
        raise ValueError(
            f"`mask` must have shape (B, {gh * gw}) for {h}x{w} images and patch size {patch_size}, got {tuple(mask.shape)}."
        )
    grid = mask.reshape(-1, 1, gh, gw)  # (B, 1, gh, gw)
    return grid.repeat_interleave(patch_size, dim=2).repeat_interleave(patch_size, dim=3)  # (B, 1, H, W)


def mask_patches(
    pixel_values: torch.Tensor,
    patch_size: int,
    mask_ratio: float,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    fill_value: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    Random patch masking of images.

    Args:
        pixel_values: (B, C, H, W), H and W divisible by `patch_size`.
        patch_size: side of a square patch.
        mask_ratio: fraction of patches removed, in [0, 1).
        noise: optional (B, L) noise as ViTMAE takes it; drawn from `generator` when omitted.
        fill_value: value written into removed patches.

    Returns:
        (masked_pixel_values (B, C, H, W), mask (B, L) with 1 = removed, pixel_mask (B, 1, H, W)).
    """
    _check_ratio(mask_ratio)
    if pixel_values.ndim != 4:
        raise ValueError(f"`pixel_values` must have shape (B, C, H, W), got {tuple(pixel_values.shape)}.")
    b, _, h, w = pixel_values.shape
    if patch_size < 1 or h % patch_size or w % patch_size:
        raise ValueError(f"`patch_size`={patch_size} must divide the image size {h}x{w}.")
    length = (h // patch_size) * (w // patch_size)
    if noise is None:
        noise = random_patch_noise(b, length, generator=generator, device=pixel_values.device)
    elif tuple(noise.shape) != (b, length):
        raise ValueError(f"`noise` must have shape ({b}, {length}), got {tuple(noise.shape)}.")
    mask = patch_mask_from_noise(noise, mask_ratio)
    pixel_mask = mask_to_image(mask, patch_size, (h, w)).to(pixel_values)
    masked = pixel_values * (1 - pixel_mask) + fill_value * pixel_mask
    return masked, mask, pixel_mask
