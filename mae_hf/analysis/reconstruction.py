"""Both models on the same images, each under its own corruption and under the other's: the engine of
`mae_hf.evaluation` applied to the four (model, corruption) pairs, and their summaries.

The same test images get the same corruption as in the model cards' evaluation (sample i's mask or noise is drawn
from `(seed, i)`), so the report's numbers for a model under its own corruption are the card's on those images.
"""

import numpy as np
import torch

from ..evaluation import CORRUPTIONS, Corruption, Reconstruction, evaluate_images
from ..metrics import SSIM_SETTINGS

__all__ = ["PAIRS", "evaluate_reconstructions", "summarize_metrics", "cross_table", "SSIM_DESCRIPTION"]

# (model, corruption) pairs in the order tables and figures show them; each model's own corruption first.
PAIRS = (("mae", "mask"), ("mae", "noise"), ("dae", "noise"), ("dae", "mask"))


def evaluate_reconstructions(
    dae,
    mae,
    pixel_values: torch.Tensor,
    mask_ratio: float | None = None,
    noise_factor: float | None = None,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[tuple[str, str], tuple[dict[str, np.ndarray], Reconstruction]]:
    """
    Both models on the same images under both corruptions.

    Args:
        dae: a `DAEModel`. mae: a `ViTMAEForPreTraining` trained on [0, 1] pixels; both for the same image size.
        pixel_values: (N, C, H, W) in [0, 1]; image i is scored as test image i (its corruption seeded by i).
        mask_ratio: default the MAE's `config.mask_ratio`. noise_factor: default the DAE's.
        seed: the evaluation seed.

    Returns:
        `{(model, corruption): (per-image scores, Reconstruction)}` for the four `PAIRS`.
    """
    if dae.config.image_size != mae.config.image_size or dae.config.num_channels != mae.config.num_channels:
        raise ValueError(
            f"The DAE takes {dae.config.num_channels}x{dae.config.image_size}x{dae.config.image_size} images and the "
            f"MAE {mae.config.num_channels}x{mae.config.image_size}x{mae.config.image_size}; compare models trained "
            "on the same image size."
        )
    corruption = {
        "mask": Corruption("mask", mask_ratio=mae.config.mask_ratio if mask_ratio is None else mask_ratio),
        "noise": Corruption("noise", noise_factor=dae.config.noise_factor if noise_factor is None else noise_factor),
    }
    models = {"dae": dae, "mae": mae}
    return {
        (m, c): evaluate_images(models[m], pixel_values, corruption[c], seed=seed, batch_size=batch_size)
        for m, c in PAIRS
    }


def summarize_metrics(values: np.ndarray) -> dict[str, float]:
    """
    Mean ± std of per-image values, ignoring `nan` (no counted pixel).

    Returns:
        `{"mean", "std", "median", "min", "max", "n"}` (`nan` when nothing is left).
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return {k: float("nan") for k in ("mean", "std", "median", "min", "max")} | {"n": 0}
    return {
        "mean": float(np.mean(v)),
        "std": float(np.std(v)),
        "median": float(np.median(v)),
        "min": float(np.min(v)),
        "max": float(np.max(v)),
        "n": int(v.size),
    }


def cross_table(per_image: dict[tuple[str, str], dict[str, np.ndarray]]) -> dict[str, dict[str, dict]]:
    """
    Each model under each corruption, summarised: `{model: {corruption: {metric: summarize_metrics(...)}}}`, e.g.
    `table["dae"]["mask"]["psnr"]["mean"]`.
    """
    table: dict[str, dict[str, dict]] = {}
    for (model, corruption), values in per_image.items():
        if corruption not in CORRUPTIONS:
            raise ValueError(f"Unknown corruption {corruption!r}.")
        table.setdefault(model, {})[corruption] = {k: summarize_metrics(v) for k, v in values.items()}
    return table


SSIM_DESCRIPTION = (
    "scikit-image structural_similarity, data_range=1, "
    + ", ".join(f"{k}={v}" for k, v in SSIM_SETTINGS.items())
    + " (11x11 Gaussian window, Wang et al. 2004); channels averaged"
)
