"""Both models on one digit under one seeded corruption: images and PSNR/SSIM, ready for the app or a figure.

Pure: tensors in, tensors, arrays and dicts out; no gradio, no I/O. Corrupting and scoring are
`mae_hf.evaluation`'s (one mask, one PSNR rule for the digit and the test set); the app's Reconstruct tab is a thin
wrapper around `compare_reconstructions` and `to_display`.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .evaluation import Corruption, draw_noise, reconstruct, score
from .labels import COMPARE_MODES
from .report.tables import fmt

__all__ = ["CORRUPTIONS", "Comparison", "compare_reconstructions", "metrics_table", "to_display", "MASK_COLOR"]

# value -> label: what each model is given ("own": each model under the corruption it was trained with).
CORRUPTIONS: dict[str, str] = {value: label for label, value in COMPARE_MODES}
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
    Corrupt one digit with `mae_hf.evaluation`'s seeded patch mask and/or Gaussian noise and reconstruct it with both
    models (the digit is sample 0 of evaluation seed `seed`: the same mask and noise as test image 0 gets there).

    Args:
        dae: a `DAEModel`. mae: a `ViTMAEForPreTraining` (eval mode; only read, so threads may share the models).
        pixel_values: (1, C, H, W) in [0, 1], the size both models take.
        mask_ratio: fraction of the patches removed, in [0, 1). noise_factor: std of the Gaussian noise, in [0, 10].
        seed: fixes the patch mask and the noise; same seed → same corruption, same outputs.
        corruption: `"own"` — MAE masked, DAE noised; `"mask"` — both get the same masked image; `"noise"` — both
            get the same noisy image, the MAE with nothing masked.

    Raises:
        ValueError: unknown corruption, ratio or factor out of range, or an image the models cannot take.
    """
    if corruption not in CORRUPTIONS:
        raise ValueError(f"`corruption` must be one of {sorted(CORRUPTIONS)}, got {corruption!r}.")
    if pixel_values.ndim != 4 or pixel_values.shape[0] != 1:
        raise ValueError(f"`pixel_values` must be one image of shape (1, C, H, W), got {tuple(pixel_values.shape)}.")
    mask = Corruption("mask", mask_ratio=float(mask_ratio), noise_factor=float(noise_factor))
    noise = Corruption("noise", mask_ratio=float(mask_ratio), noise_factor=float(noise_factor))
    x = pixel_values.float()
    kinds = {"own": ("mask", "noise"), "mask": ("mask", "mask"), "noise": ("noise", "noise")}[corruption]
    results = {}
    for name, model, kind in (("mae", mae, kinds[0]), ("dae", dae, kinds[1])):
        c = mask if kind == "mask" else noise
        rec = reconstruct(model, x, c, draw_noise(model, kind, [0], seed=int(seed)))
        if rec.pixel_mask is not None and float(rec.pixel_mask.sum()) == 0:
            rec.pixel_mask = None  # mask ratio 0: nothing hidden
        results[name] = (rec, score(rec, x))
    (mae_rec, mae_scores), (dae_rec, dae_scores) = results["mae"], results["dae"]
    # The MAE's raw output, scored on its own, beside the pasted one (under noise the two are the same image).
    raw = score(type(mae_rec)(mae_rec.corrupted, mae_rec.reconstruction, mae_rec.reconstruction, mae_rec.pixel_mask), x)
    metrics = [
        _row("MAE reconstruction", raw),
        _row("MAE, visible patches pasted", mae_scores),
        _row("DAE reconstruction", dae_scores),
    ]
    return Comparison(
        clean=x,
        mae_input=mae_rec.corrupted,
        dae_input=dae_rec.corrupted,
        mae_pixel_mask=mae_rec.pixel_mask,
        dae_pixel_mask=dae_rec.pixel_mask,
        mae_reconstruction=mae_rec.reconstruction,
        mae_pasted=mae_rec.shown,
        dae_reconstruction=dae_rec.reconstruction,
        corruption=corruption,
        mask_ratio=0.0 if kinds[0] == "noise" else float(mask_ratio),
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
