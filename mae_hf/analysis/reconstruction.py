"""The models on the same images, each under its own corruption and under the other one: the engine of
`mae_hf.evaluation` applied to every (model, corruption) pair, and their summaries.

The same test images get the same corruption as in the model cards' evaluation (sample i's mask or noise is drawn
from `(seed, i)`), so the report's numbers for a model under its own corruption are the card's on those images.
"""

import numpy as np
import torch

from ..evaluation import (
    CORRUPTION_KINDS,
    DEFAULT_MASK_RATIO,
    DEFAULT_NOISE_FACTOR,
    Corruption,
    Reconstruction,
    evaluate_images,
    own_corruption,
)
from ..metrics import SSIM_SETTINGS

__all__ = [
    "model_pairs",
    "pairs_of",
    "check_same_images",
    "default_corruptions",
    "evaluate_reconstructions",
    "summarize_metrics",
    "cross_table",
    "SSIM_DESCRIPTION",
]


def model_pairs(own: dict[str, str]) -> list[tuple[str, str]]:
    """(model, corruption) pairs in the order tables and figures show them: model by model, each under its own
    corruption (`own`: `{name: "mask" | "noise"}`) first, then under the other."""
    return [(name, c) for name, kind in own.items() for c in (kind, *(k for k in CORRUPTION_KINDS if k != kind))]


# The pairs of a result written before results named their models (docs/results/metrics.json of the shipped models).
LEGACY_PAIRS = (("mae", "mask"), ("mae", "noise"), ("dae", "noise"), ("dae", "mask"))


def pairs_of(reconstruction: dict) -> list[tuple[str, str]]:
    """The (model, corruption) pairs of an analysis's `metrics["reconstruction"]`, in `model_pairs` order."""
    if "own" in reconstruction:
        return model_pairs(reconstruction["own"])
    return [p for p in LEGACY_PAIRS if p[0] in reconstruction]


def check_same_images(models: dict) -> tuple[int, int]:
    """The (image_size, num_channels) every model of `models` takes; `ValueError` naming them where they differ."""
    shapes = {name: (m.config.image_size, m.config.num_channels) for name, m in models.items()}
    if len(set(shapes.values())) > 1:
        said = ", ".join(f"the {name.upper()} {c}x{s}x{s}" for name, (s, c) in shapes.items())
        raise ValueError(
            f"The models take images of different sizes ({said}); compare models trained on the same size."
        )
    return next(iter(shapes.values()))


def default_corruptions(models: dict, mask_ratio: float | None = None, noise_factor: float | None = None) -> dict:
    """`{"mask": Corruption, "noise": Corruption}` for comparing `models`: the mask ratio of the first model made for
    masking and the noise of the first made for noise (else the defaults), unless given."""
    own = {name: own_corruption(m) for name, m in models.items()}
    if mask_ratio is None:
        mask_ratio = next((c.mask_ratio for c in own.values() if c.kind == "mask"), DEFAULT_MASK_RATIO)
    if noise_factor is None:
        noise_factor = next((c.noise_factor for c in own.values() if c.kind == "noise"), DEFAULT_NOISE_FACTOR)
    return {"mask": Corruption("mask", mask_ratio=mask_ratio), "noise": Corruption("noise", noise_factor=noise_factor)}


def evaluate_reconstructions(
    models: dict,
    pixel_values: torch.Tensor,
    mask_ratio: float | None = None,
    noise_factor: float | None = None,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[tuple[str, str], tuple[dict[str, np.ndarray], Reconstruction]]:
    """
    Every model on the same images under both corruptions.

    Args:
        models: `{name: model}`, all for the same image size.
        pixel_values: (N, C, H, W) in [0, 1]; image i is scored as test image i (its corruption seeded by i).
        mask_ratio / noise_factor: default `default_corruptions`'. seed: the evaluation seed.

    Returns:
        `{(model, corruption): (per-image scores, Reconstruction)}` in `model_pairs` order.
    """
    check_same_images(models)
    corruption = default_corruptions(models, mask_ratio, noise_factor)
    pairs = model_pairs({name: own_corruption(m).kind for name, m in models.items()})
    return {
        (m, c): evaluate_images(models[m], pixel_values, corruption[c], seed=seed, batch_size=batch_size)
        for m, c in pairs
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
        if corruption not in CORRUPTION_KINDS:
            raise ValueError(f"Unknown corruption {corruption!r}.")
        table.setdefault(model, {})[corruption] = {k: summarize_metrics(v) for k, v in values.items()}
    return table


SSIM_DESCRIPTION = (
    "scikit-image structural_similarity, data_range=1, "
    + ", ".join(f"{k}={v}" for k, v in SSIM_SETTINGS.items())
    + " (11x11 Gaussian window, Wang et al. 2004); channels averaged"
)
