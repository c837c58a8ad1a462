"""Both models on one digit under one seeded corruption: images and PSNR/SSIM, ready for the app or a figure.

Pure: tensors in, tensors, arrays and dicts out; no gradio, no I/O. The app's Reconstruct tab is a thin wrapper
around `compare_reconstructions` and `to_display`.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .corruption import add_gaussian_noise, mask_patches, random_patch_noise
from .mae import num_patches, reconstruct_mae
from .metrics import compute_masked_psnr, compute_psnr, compute_ssim

__all__ = ["CORRUPTIONS", "Comparison", "compare_reconstructions", "metrics_table", "to_display", "MASK_COLOR"]

# value -> label. "own": each model under the corruption it was trained with.
CORRUPTIONS: dict[str, str] = {
    "own": "Each its own (MAE: patch mask, DAE: Gaussian noise)",
    "mask": "Same patch mask for both",
    "noise": "Same Gaussian noise for both (MAE unmasked)",
}
# Masked patches are drawn in this colour, so they are not mistaken for MNIST's black background.
MASK_COLOR = (46, 84, 150)


@dataclass
class Comparison:
    """
    One digit through both models. Images are (1, 1, H, W) float tensors in [0, 1].

    Attributes:
        clean: the model input.
        mae_input / dae_input: what each model's encoder was given (masked patches are 0).
        mae_pixel_mask / dae_pixel_mask: (1, 1, H, W), 1 = patch removed; None where no patch was removed.
        mae_reconstruction: the MAE decoder's output for every patch. mae_pasted: visible patches kept, masked ones
            reconstructed. dae_reconstruction: the DAE's output.
        metrics: one dict per row — `name`, `input_psnr` (the corrupted input against the clean one), `psnr`,
            `ssim`, `masked_psnr` (over removed patches only; None without a mask). PSNR in dB on [0, 1].
    """

    clean: torch.Tensor
    mae_input: torch.Tensor
    dae_input: torch.Tensor
    mae_pixel_mask: torch.Tensor | None
    dae_pixel_mask: torch.Tensor | None
    mae_reconstruction: torch.Tensor
    mae_pasted: torch.Tensor
    dae_reconstruction: torch.Tensor
    corruption: str
    mask_ratio: float
    noise_factor: float
    metrics: list[dict] = field(default_factory=list)


def _finite(value: float) -> float | None:
    """JSON-safe metric: None for NaN (nothing to measure); +inf stays (identical images)."""
    return None if math.isnan(value) else float(value)


def _row(name: str, clean, corrupted, output, pixel_mask) -> dict:
    masked = compute_masked_psnr(output, clean, pixel_mask)[0] if pixel_mask is not None else float("nan")
    return {
        "name": name,
        "input_psnr": _finite(compute_psnr(corrupted, clean)[0]),
        "psnr": _finite(compute_psnr(output, clean)[0]),
        "ssim": _finite(compute_ssim(output, clean)[0]),
        "masked_psnr": _finite(masked),
    }


@torch.no_grad()
def compare_reconstructions(
    dae,
    mae,
    pixel_values: torch.Tensor,
    *,
    mask_ratio: float = 0.75,
    noise_factor: float = 0.5,
    seed: int = 0,
    corruption: str = "own",
) -> Comparison:
    """
    Corrupt one image with a seeded patch mask and/or Gaussian noise and reconstruct it with both models.

    Args:
        dae: a `DAEModel`. mae: a `ViTMAEForPreTraining` (eval mode; it is not modified, the mask ratio is
            passed per call but ViTMAE reads it from its config, so callers sharing a model across threads
            must serialise calls).
        pixel_values: (1, C, H, W) in [0, 1], the size both models take.
        mask_ratio: fraction of the MAE's patches removed, in [0, 1).
        noise_factor: std of the DAE's Gaussian noise (`clamp(x + f·N(0, 1), 0, 1)`), ≥ 0.
        seed: fixes the patch mask and the noise; same seed → same corruption, same outputs.
        corruption: `"own"` — MAE masked, DAE noised; `"mask"` — the DAE gets the MAE's masked image;
            `"noise"` — both get the same noisy image, the MAE with nothing masked.

    Raises:
        ValueError: unknown corruption, ratio or factor out of range, or an image the models cannot take.
    """
    if corruption not in CORRUPTIONS:
        raise ValueError(f"`corruption` must be one of {sorted(CORRUPTIONS)}, got {corruption!r}.")
    if not 0.0 <= float(mask_ratio) < 1.0:
        raise ValueError(f"The mask ratio must be in [0, 1), got {mask_ratio}.")
    if not 0.0 <= float(noise_factor) <= 10.0:
        raise ValueError(f"The noise factor must be in [0, 10], got {noise_factor}.")
    if pixel_values.ndim != 4 or pixel_values.shape[0] != 1:
        raise ValueError(f"`pixel_values` must be one image of shape (1, C, H, W), got {tuple(pixel_values.shape)}.")
    x = pixel_values.float()
    generator = torch.Generator().manual_seed(int(seed))
    patch_noise = random_patch_noise(1, num_patches(mae.config), generator=generator)  # (1, L)
    gaussian = torch.randn(x.shape, generator=generator)  # (1, C, H, W)
    noisy = add_gaussian_noise(x, float(noise_factor), noise=gaussian)

    if corruption == "noise":
        rec = reconstruct_mae(mae, noisy, mask_ratio=0.0, noise=patch_noise)
        mae_input, mae_mask = noisy, None
    else:
        rec = reconstruct_mae(mae, x, mask_ratio=float(mask_ratio), noise=patch_noise)
        mae_input = rec.masked_input
        mae_mask = rec.pixel_mask if rec.mask.sum() > 0 else None
    if corruption == "mask":
        dae_input, _, dae_mask = mask_patches(x, mae.config.patch_size, float(mask_ratio), noise=patch_noise)
        dae_mask = dae_mask if dae_mask.sum() > 0 else None
    else:
        dae_input, dae_mask = noisy, None
    dae_out = dae(x, corrupted_pixel_values=dae_input)
    # In "noise" mode every patch is visible, so the pasted image is the noisy input itself; show the output.
    pasted = rec.reconstruction if corruption == "noise" else rec.pasted

    metrics = [
        _row("MAE reconstruction", x, mae_input, rec.reconstruction, mae_mask),
        _row("MAE, visible patches pasted", x, mae_input, pasted, mae_mask),
        _row("DAE reconstruction", x, dae_input, dae_out.reconstruction, dae_mask),
    ]
    return Comparison(
        clean=x,
        mae_input=mae_input,
        dae_input=dae_input,
        mae_pixel_mask=mae_mask,
        dae_pixel_mask=dae_mask,
        mae_reconstruction=rec.reconstruction,
        mae_pasted=pasted,
        dae_reconstruction=dae_out.reconstruction,
        corruption=corruption,
        mask_ratio=0.0 if corruption == "noise" else float(mask_ratio),
        noise_factor=0.0 if corruption == "mask" else float(noise_factor),
        metrics=metrics,
    )


def to_display(image, scale: int = 10, pixel_mask=None, mask_color: tuple[int, int, int] = MASK_COLOR) -> np.ndarray:
    """
    A [0, 1] grayscale image → an RGB uint8 array enlarged `scale`× by nearest neighbour (crisp pixels).

    Args:
        image: (H, W), (1, H, W) or (1, 1, H, W) tensor or array in [0, 1].
        pixel_mask: same shape, 1 = removed patch, drawn in `mask_color`.

    Returns:
        (H·scale, W·scale, 3) uint8.
    """
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    arr = np.squeeze(arr)
    if arr.ndim != 2:
        raise ValueError(f"`image` must hold one grayscale image, got shape {np.shape(image)}.")
    gray = np.round(np.clip(arr, 0.0, 1.0) * 255).astype(np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=2)  # (H, W, 3)
    if pixel_mask is not None:
        m = np.squeeze(pixel_mask.detach().cpu().numpy() if isinstance(pixel_mask, torch.Tensor) else pixel_mask)
        rgb[m > 0.5] = mask_color
    return rgb.repeat(scale, axis=0).repeat(scale, axis=1)


def _format(value: float | None, digits: int) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "∞"
    return f"{value:.{digits}f}"


def metrics_table(metrics: list[dict]) -> list[list[str]]:
    """
    `Comparison.metrics` as display rows: name, corrupted-input PSNR, output PSNR, output SSIM, masked-region PSNR.

    PSNR in dB with 2 decimals, SSIM with 3; "∞" for identical images, "—" where nothing was masked.
    """
    return [
        [
            row["name"],
            _format(row["input_psnr"], 2),
            _format(row["psnr"], 2),
            _format(row["ssim"], 3),
            _format(row["masked_psnr"], 2),
        ]
        for row in metrics
    ]
