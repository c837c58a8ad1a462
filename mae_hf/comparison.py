"""Every model on one digit under one seeded corruption: images and PSNR/SSIM, ready for the app or a figure.

Pure: tensors in, tensors, arrays and dicts out; no gradio, no I/O. Corrupting and scoring are
`mae_hf.evaluation`'s (one mask, one PSNR rule for the digit and the test set); the app's Reconstruct tab is a thin
wrapper around `compare_reconstructions` and `to_display`.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .evaluation import Corruption, draw_noise, own_corruption, reconstruct, score
from .labels import COMPARE_MODE_VALUES
from .registry import kind_of, model_label
from .tables import fmt

__all__ = [
    "ModelComparison",
    "Comparison",
    "compare_reconstructions",
    "metrics_table",
    "to_display",
    "MASK_COLOR",
]

# Masked patches are drawn in this colour, so they are not mistaken for MNIST's black background.
MASK_COLOR = (46, 84, 150)


@dataclass
class ModelComparison:
    """
    One model on the digit. Images are (1, C, H, W) float tensors in [0, 1].

    Attributes:
        corruption: what it was given, "mask" or "noise". input: its corrupted input (masked patches 0).
        pixel_mask: (1, 1, H, W), 1 = patch removed; None where none was. reconstruction: its output for every pixel.
        pasted: the visible patches pasted back over it, for a model that masks its own input (else None).
    """

    corruption: str
    input: torch.Tensor
    pixel_mask: torch.Tensor | None
    reconstruction: torch.Tensor
    pasted: torch.Tensor | None


@dataclass
class Comparison:
    """
    One digit through every model under one seeded corruption.

    Attributes:
        clean: the model input (1, C, H, W). models: `{name: ModelComparison}` in the order given.
        metrics: one dict per row — `name`, `input_psnr` (the corrupted input against the clean one), `psnr`, `ssim`,
            `masked_psnr` (over removed patches only; None without a mask). PSNR in dB on [0, 1].
    """

    clean: torch.Tensor
    models: dict
    corruption: str
    mask_ratio: float
    noise_factor: float
    metrics: list[dict] = field(default_factory=list)


def _row(name: str, scores: dict, key: str = "psnr", ssim_key: str = "ssim") -> dict:
    def value(k):
        v = scores.get(k)
        return None if v is None or math.isnan(float(v[0])) else float(v[0])

    return {
        "name": name,
        "input_psnr": value("psnr_input"),
        "psnr": value(key),
        "ssim": value(ssim_key),
        "masked_psnr": value("psnr_masked"),
    }


@torch.no_grad()
def compare_reconstructions(
    models: dict,
    pixel_values: torch.Tensor,
    *,
    mask_ratio: float = 0.75,
    noise_factor: float = 0.5,
    seed: int = 0,
    corruption: str = "own",
) -> Comparison:
    """
    Corrupt one digit with `mae_hf.evaluation`'s seeded patch mask and/or Gaussian noise and reconstruct it with every
    model (the digit is sample 0 of evaluation seed `seed`: the same mask and noise as test image 0 gets there).

    Args:
        models: `{name: model}` of registered kinds, in eval mode (only read, so threads may share them).
        pixel_values: (1, C, H, W) in [0, 1], the size the models take.
        mask_ratio: fraction of the patches removed, in [0, 1). noise_factor: std of the Gaussian noise, in [0, 10].
        seed: fixes the patch mask and the noise; same seed → same corruption, same outputs.
        corruption: `"own"` — each model under the corruption it was made for; `"mask"` — all get the same masked
            image; `"noise"` — all get the same noisy image (a ViT with nothing masked).

    Raises:
        ValueError: unknown corruption, ratio or factor out of range, or an image the models cannot take.
    """
    if corruption not in COMPARE_MODE_VALUES:
        raise ValueError(f"`corruption` must be one of {list(COMPARE_MODE_VALUES)}, got {corruption!r}.")
    if pixel_values.ndim != 4 or pixel_values.shape[0] != 1:
        raise ValueError(f"`pixel_values` must be one image of shape (1, C, H, W), got {tuple(pixel_values.shape)}.")
    given = {
        "mask": Corruption("mask", mask_ratio=float(mask_ratio), noise_factor=float(noise_factor)),
        "noise": Corruption("noise", mask_ratio=float(mask_ratio), noise_factor=float(noise_factor)),
    }
    x = pixel_values.float()
    out, metrics = {}, []
    for name, model in models.items():
        kind = own_corruption(model).kind if corruption == "own" else corruption
        rec = reconstruct(model, x, given[kind], draw_noise(model, kind, [0], seed=int(seed)))
        if rec.pixel_mask is not None and float(rec.pixel_mask.sum()) == 0:
            rec.pixel_mask = None  # mask ratio 0: nothing hidden
        masks_itself = (
            kind == "mask" and kind_of(model).masked_reconstruct is not None and own_corruption(model).kind == "mask"
        )
        label = model_label(name)
        if masks_itself:  # its raw output, scored on its own, beside the pasted one
            raw = type(rec)(rec.corrupted, rec.reconstruction, rec.reconstruction, rec.pixel_mask)
            metrics += [
                _row(f"{label} reconstruction", score(raw, x)),
                _row(f"{label}, visible patches pasted", score(rec, x)),
            ]
        else:
            metrics.append(_row(f"{label} reconstruction", score(rec, x)))
        out[name] = ModelComparison(
            corruption=kind,
            input=rec.corrupted,
            pixel_mask=rec.pixel_mask,
            reconstruction=rec.reconstruction,
            pasted=rec.shown if masks_itself else None,
        )
    masked = any(c.corruption == "mask" for c in out.values())
    noisy = any(c.corruption == "noise" for c in out.values())
    return Comparison(
        clean=x,
        models=out,
        corruption=corruption,
        mask_ratio=float(mask_ratio) if masked else 0.0,
        noise_factor=float(noise_factor) if noisy else 0.0,
        metrics=metrics,
    )


def to_display(image, scale: int = 10, pixel_mask=None, mask_color: tuple[int, int, int] = MASK_COLOR) -> np.ndarray:
    """
    A [0, 1] grayscale or colour image → an RGB uint8 array enlarged `scale`× by nearest neighbour (crisp pixels).

    Args:
        image: (H, W), (C, H, W) or (1, C, H, W) tensor or array in [0, 1], C = 1 or 3.
        pixel_mask: the same height and width (any channels), 1 = removed patch, drawn in `mask_color`.

    Returns:
        (H·scale, W·scale, 3) uint8.
    """
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    arr = arr.reshape(arr.shape[-3:]) if arr.ndim == 4 and arr.shape[0] == 1 else arr
    arr = arr[None] if arr.ndim == 2 else arr
    if arr.ndim != 3 or arr.shape[0] not in (1, 3):
        raise ValueError(f"`image` must hold one grayscale or colour image, got shape {np.shape(image)}.")
    pixels = np.round(np.clip(arr, 0.0, 1.0) * 255).astype(np.uint8).transpose(1, 2, 0)  # (H, W, C)
    rgb = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels.copy()
    if pixel_mask is not None:
        m = pixel_mask.detach().cpu().numpy() if isinstance(pixel_mask, torch.Tensor) else np.asarray(pixel_mask)
        m = m.reshape(-1, *m.shape[-2:]).max(axis=0)  # (H, W): removed in any channel
        rgb[m > 0.5] = mask_color
    return rgb.repeat(scale, axis=0).repeat(scale, axis=1)


def metrics_table(metrics: list[dict]) -> tuple[list[str], list[list[str]]]:
    """
    `Comparison.metrics` as a display table `(headers, rows)`: name, corrupted-input PSNR, output PSNR, output SSIM,
    masked-region PSNR.

    PSNR in dB with 2 decimals (capped at `mae_hf.evaluation.PSNR_MAX`), SSIM with 3; "—" where nothing was masked.
    """
    headers = ["Output", "Corrupted input PSNR (dB)", "Output PSNR (dB)", "Output SSIM", "Masked-region PSNR (dB)"]
    rows = [
        [
            row["name"],
            fmt(row["input_psnr"], 2),
            fmt(row["psnr"], 2),
            fmt(row["ssim"], 3),
            fmt(row["masked_psnr"], 2),
        ]
        for row in metrics
    ]
    return headers, rows
