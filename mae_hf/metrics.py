"""Pure image-quality metrics on a stated data range (default [0, 1]), one value per image."""

import numpy as np
import torch
from skimage.metrics import structural_similarity

__all__ = ["SSIM_SETTINGS", "compute_psnr", "compute_masked_psnr", "compute_ssim"]

# Wang et al. (2004) settings, as scikit-image documents for reproducing the paper: 11×11 Gaussian window with
# sigma 1.5, population covariance. On 28×28 images a 7×7 uniform window (skimage's default) gives other values.
SSIM_SETTINGS = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)


def _as_batch(x) -> np.ndarray:
    arr = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None, None]
    elif arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4:
        raise ValueError(f"Images must be (H, W), (B, H, W) or (B, C, H, W), got shape {arr.shape}.")
    return arr


def _pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_batch(x), _as_batch(y)
    if a.shape != b.shape:
        raise ValueError(f"Images must have the same shape, got {a.shape} and {b.shape}.")
    return a, b


def compute_psnr(x, y, data_range: float = 1.0) -> np.ndarray:
    """
    Peak signal-to-noise ratio per image, `10 log10(data_range² / MSE)`.

    Args:
        x, y: (B, C, H, W) (or (B, H, W), (H, W)) tensors or arrays on the same scale.
        data_range: max - min of the scale, 1.0 for [0, 1] images.

    Returns:
        (B,) float64; `inf` where the images are identical.
    """
    a, b = _pair(x, y)
    mse = ((a - b) ** 2).reshape(a.shape[0], -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(data_range**2 / mse)


def compute_ssim(x, y, data_range: float = 1.0) -> np.ndarray:
    """
    Structural similarity per image (scikit-image, `SSIM_SETTINGS`), channels averaged.

    Returns:
        (B,) float64 in [-1, 1]; 1 where the images are identical.
    """
    a, b = _pair(x, y)
    return np.array(
        [
            structural_similarity(ai, bi, data_range=data_range, channel_axis=0, **SSIM_SETTINGS)
            for ai, bi in zip(a, b)
        ]
    )


def compute_masked_psnr(x, y, pixel_mask, data_range: float = 1.0) -> np.ndarray:
    """
    PSNR per image over the pixels where `pixel_mask` is 1 only (e.g. the MAE's masked patches).

    Args:
        x, y: (B, C, H, W) images on the same scale.
        pixel_mask: (B, 1 or C, H, W), 1 = counted.

    Returns:
        (B,) float64; `nan` for an image with no counted pixel, `inf` where the counted pixels are identical.
    """
    a, b = _pair(x, y)
    m = np.broadcast_to(_as_batch(pixel_mask), a.shape).astype(np.float64)
    count = m.reshape(a.shape[0], -1).sum(axis=1)
    sq = (((a - b) ** 2) * m).reshape(a.shape[0], -1).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mse = sq / count
        return np.where(count > 0, 10.0 * np.log10(data_range**2 / mse), np.nan)
