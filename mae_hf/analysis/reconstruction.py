"""Reconstruction quality of both models on the same images, under their own corruption and under each other's.

Every image and metric is on [0, 1] (`data_range=1`). Metric names are the ones the training loop logs:
`psnr`, `ssim` (whole image), `psnr_masked` (masked patches only) and `psnr_input` (the corrupted input's own
PSNR against the clean image, so the gain is visible).
"""

from dataclasses import dataclass, field

import numpy as np
import torch

from ..corruption import add_gaussian_noise, mask_patches, random_patch_noise
from ..mae import evaluating, num_patches, reconstruct_mae
from ..metrics import SSIM_SETTINGS, compute_masked_psnr, compute_psnr, compute_ssim

__all__ = [
    "CORRUPTIONS",
    "ReconstructionResult",
    "corrupt_both_ways",
    "evaluate_reconstructions",
    "summarize_metrics",
    "cross_table",
    "SSIM_DESCRIPTION",
]

# The two corruptions: the MAE's random patch masking and the DAE's Gaussian noise.
CORRUPTIONS = ("masking", "noise")


@dataclass
class ReconstructionResult:
    """
    One model under one corruption, on N images. Images are (N, C, H, W) float tensors in [0, 1].

    Attributes:
        model: `"dae"` or `"mae"`. corruption: `"masking"` or `"noise"`.
        corrupted: the model's input. reconstruction: the model's output for every pixel.
        shown: the image the whole-image metrics are computed on — the MAE's reconstruction with the visible
            patches pasted back under masking, otherwise `reconstruction`.
        metrics: per-image (N,) arrays `psnr`, `ssim`, `psnr_input`, and under masking `psnr_masked`.
    """

    model: str
    corruption: str
    corrupted: torch.Tensor
    reconstruction: torch.Tensor
    shown: torch.Tensor
    metrics: dict[str, np.ndarray] = field(default_factory=dict)


def corrupt_both_ways(
    pixel_values: torch.Tensor, patch_size: int, mask_ratio: float, noise_factor: float, seed: int = 0
) -> dict[str, torch.Tensor]:
    """
    The two corruptions of the same images, repeatable under `seed`.

    Args:
        pixel_values: (N, C, H, W) in [0, 1].
        patch_size: the MAE's patch size (divides H and W).
        mask_ratio: fraction of patches removed, in [0, 1).
        noise_factor: standard deviation of the Gaussian noise (the DAE's `noise_factor`).
        seed: seeds both the mask and the noise.

    Returns:
        dict with `mask_noise` (N, L) (ViTMAE's `noise` argument for this mask), `masked` (N, C, H, W, masked
        patches 0), `pixel_mask` (N, 1, H, W, 1 = removed) and `noisy` (N, C, H, W, clamped to [0, 1]).
    """
    n, _, h, w = pixel_values.shape
    generator = torch.Generator().manual_seed(seed)
    mask_noise = random_patch_noise(n, (h // patch_size) * (w // patch_size), generator=generator)
    masked, _, pixel_mask = mask_patches(pixel_values, patch_size, mask_ratio, noise=mask_noise)
    noisy = add_gaussian_noise(pixel_values, noise_factor, generator=generator)
    return {"mask_noise": mask_noise, "masked": masked, "pixel_mask": pixel_mask, "noisy": noisy}


def _batched(fn, n: int, batch_size: int) -> list:
    return [fn(slice(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]


@torch.no_grad()
def _run_dae(dae, clean: torch.Tensor, corrupted: torch.Tensor, batch_size: int) -> torch.Tensor:
    with evaluating(dae):
        parts = _batched(
            lambda s: dae(clean[s], corrupted_pixel_values=corrupted[s]).reconstruction, len(clean), batch_size
        )
    return torch.cat(parts)


def _metrics(clean, corrupted, shown, reconstruction, pixel_mask=None) -> dict[str, np.ndarray]:
    out = {
        "psnr": compute_psnr(shown, clean),
        "ssim": compute_ssim(shown, clean),
        "psnr_input": compute_psnr(corrupted, clean),
    }
    if pixel_mask is not None:
        out["psnr_masked"] = compute_masked_psnr(reconstruction, clean, pixel_mask)
    return out


def evaluate_reconstructions(
    dae,
    mae,
    pixel_values: torch.Tensor,
    mask_ratio: float | None = None,
    noise_factor: float | None = None,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[tuple[str, str], ReconstructionResult]:
    """
    Both models on the same images, each under its own corruption and under the other's.

    - MAE × masking: `reconstruct_mae` with the shared mask; whole-image metrics on the pasted image (visible
      patches + reconstructed masked ones), `psnr_masked` on the masked patches.
    - DAE × noise: the DAE's own Gaussian corruption.
    - DAE × masking: the same masked image given as `corrupted_pixel_values`.
    - MAE × noise: the noisy image with masking off (ratio 0, spatial order); metrics on its reconstruction.

    Args:
        dae: a `DAEModel`. mae: a `ViTMAEForPreTraining` trained on [0, 1] pixels.
        pixel_values: (N, C, H, W) in [0, 1], the size both models take.
        mask_ratio: defaults to the MAE's `config.mask_ratio`. noise_factor: defaults to the DAE's.
        seed: seeds mask and noise.

    Returns:
        `{(model, corruption): ReconstructionResult}` for the four pairs.
    """
    if dae.config.image_size != mae.config.image_size or dae.config.num_channels != mae.config.num_channels:
        raise ValueError(
            f"The DAE takes {dae.config.num_channels}x{dae.config.image_size}x{dae.config.image_size} images and the "
            f"MAE {mae.config.num_channels}x{mae.config.image_size}x{mae.config.image_size}; compare models trained "
            "on the same image size."
        )
    mask_ratio = mae.config.mask_ratio if mask_ratio is None else mask_ratio
    noise_factor = dae.config.noise_factor if noise_factor is None else noise_factor
    c = corrupt_both_ways(pixel_values, mae.config.patch_size, mask_ratio, noise_factor, seed)
    n = len(pixel_values)
    results = {}

    mae_parts = _batched(
        lambda s: reconstruct_mae(mae, pixel_values[s], mask_ratio=mask_ratio, noise=c["mask_noise"][s]), n, batch_size
    )
    rec = torch.cat([p.reconstruction for p in mae_parts])
    pasted = torch.cat([p.pasted for p in mae_parts])
    pixel_mask = torch.cat([p.pixel_mask for p in mae_parts])
    assert torch.equal(pixel_mask, c["pixel_mask"])  # one mask for both models
    results["mae", "masking"] = ReconstructionResult(
        "mae", "masking", c["masked"], rec, pasted, _metrics(pixel_values, c["masked"], pasted, rec, pixel_mask)
    )

    length = num_patches(mae.config)
    order = torch.arange(length, dtype=torch.float32).expand(n, length)  # masking off, spatial order
    rec = torch.cat(
        [p.reconstruction for p in _batched(
            lambda s: reconstruct_mae(mae, c["noisy"][s], mask_ratio=0.0, noise=order[s]), n, batch_size
        )]
    )
    results["mae", "noise"] = ReconstructionResult(
        "mae", "noise", c["noisy"], rec, rec, _metrics(pixel_values, c["noisy"], rec, rec)
    )

    rec = _run_dae(dae, pixel_values, c["noisy"], batch_size)
    results["dae", "noise"] = ReconstructionResult(
        "dae", "noise", c["noisy"], rec, rec, _metrics(pixel_values, c["noisy"], rec, rec)
    )
    rec = _run_dae(dae, pixel_values, c["masked"], batch_size)
    results["dae", "masking"] = ReconstructionResult(
        "dae", "masking", c["masked"], rec, rec, _metrics(pixel_values, c["masked"], rec, rec, c["pixel_mask"])
    )
    return results


def summarize_metrics(values: np.ndarray) -> dict[str, float]:
    """
    Mean ± std of per-image values, ignoring `nan` (no counted pixel); `inf` (a perfect image) is counted.

    Returns:
        `{"mean", "std", "median", "min", "max", "n"}` as floats (`nan` when nothing is finite or inf).
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return {k: float("nan") for k in ("mean", "std", "median", "min", "max")} | {"n": 0}
    with np.errstate(invalid="ignore"):
        return {
            "mean": float(np.mean(v)),
            "std": float(np.std(v)),
            "median": float(np.median(v)),
            "min": float(np.min(v)),
            "max": float(np.max(v)),
            "n": int(v.size),
        }


def cross_table(results: dict[tuple[str, str], ReconstructionResult]) -> dict[str, dict[str, dict]]:
    """
    The cross table: each model under each corruption, summarised.

    Returns:
        `{model: {corruption: {metric: summary}}}` with `summarize_metrics` summaries for every metric the
        result carries, e.g. `table["dae"]["masking"]["psnr"]["mean"]`.
    """
    table: dict[str, dict[str, dict]] = {}
    for (model, corruption), res in results.items():
        table.setdefault(model, {})[corruption] = {k: summarize_metrics(v) for k, v in res.metrics.items()}
    return table


SSIM_DESCRIPTION = (
    "scikit-image structural_similarity, data_range=1, "
    + ", ".join(f"{k}={v}" for k, v in SSIM_SETTINGS.items())
    + " (11x11 Gaussian window, Wang et al. 2004); channels averaged"
)
