"""The one evaluation engine: where a corruption is defined, drawn, applied to either architecture and scored.

Everything that corrupts, reconstructs or scores an image calls this module: the training loop (its objective and
its per-epoch test metrics), the model cards, `mae-hf report`, `mae-hf study` and the app's single digit.

- **Define.** A `Corruption` is `"mask"` (random patch masking with ViTMAE's noise semantics, at `mask_ratio`) or
  `"noise"` (Gaussian, `clamp(x + noise_factor · N(0, 1), 0, 1)`). `own_corruption(model)` is the one it was
  trained with.
- **Draw.** One seeding scheme: sample i's noise comes from a generator seeded by `(seed, stream, index_i)`
  (`sample_noise`), never from the batch it is in, so numbers do not depend on batch size, order or process count.
  Training uses stream `epoch + 1`, evaluation `EVAL_STREAM`. The same draw gives a ViT and a CNN the same mask.
- **Apply.** `reconstruct(model, images, corruption, noise)` works for any model of a registered kind
  (`mae_hf.registry`): a model that masks its own input and was trained with masking (a ViTMAE) drops the masked
  tokens (its own mechanism); any other model gets the image with the masked patches set to 0 (a ViTMAE then runs
  with masking off, tokens in spatial order); under noise every model gets the noisy image.
- **Score.** `score` gives per-image `psnr` and `ssim` of the shown image (under masking: the visible pixels pasted
  back, for every model), `psnr_input` (the corrupted input) and, under masking, `psnr_masked` (the masked pixels
  only). The PSNR rule, stated once: PSNR on [0, 1] with data range 1, per image, capped at `PSNR_MAX` dB (an image
  reproduced exactly would otherwise make a mean infinite).
"""

from dataclasses import dataclass

import numpy as np
import torch

from .corruption import add_gaussian_noise, mask_patches, spatial_order_noise
from .mae import MAE_PRESETS, evaluating, forward_mae, mae_loss_target, masked_patch_loss, num_patches
from .metrics import compute_masked_psnr, compute_psnr, compute_ssim
from .modeling_dae import reconstruction_loss
from .registry import kind_of

__all__ = [
    "CORRUPTION_KINDS",
    "EVAL_SEED",
    "EVAL_STREAM",
    "PSNR_MAX",
    "Corruption",
    "Reconstruction",
    "own_corruption",
    "corruption_for",
    "sample_seed",
    "sample_noise",
    "draw_noise",
    "objective",
    "mae_objective",
    "dae_objective",
    "reconstruct",
    "psnr",
    "score",
    "evaluate_per_sample",
    "evaluate",
    "evaluate_images",
]

CORRUPTION_KINDS = ("mask", "noise")
# The patch grid of a mask for a model whose config has no `patch_size` (the MAE's and the DAE's have one).
DEFAULT_PATCH_SIZE = 4
DEFAULT_MASK_RATIO = MAE_PRESETS["mnist"]["mask_ratio"]
DEFAULT_NOISE_FACTOR = 0.5
EVAL_SEED = 0
EVAL_STREAM = 0
PSNR_MAX = 100.0


@dataclass(frozen=True)
class Corruption:
    """One corruption: `kind` `"mask"` (uses `mask_ratio`) or `"noise"` (uses `noise_factor`)."""

    kind: str
    mask_ratio: float = DEFAULT_MASK_RATIO
    noise_factor: float = DEFAULT_NOISE_FACTOR

    def __post_init__(self):
        if self.kind not in CORRUPTION_KINDS:
            raise ValueError(f"Unknown corruption {self.kind!r}; choose one of {list(CORRUPTION_KINDS)}.")
        if not 0.0 <= float(self.mask_ratio) < 1.0:
            raise ValueError(f"The mask ratio must be in [0, 1), got {self.mask_ratio}.")
        if not 0.0 <= float(self.noise_factor) <= 10.0:
            raise ValueError(f"The noise factor must be in [0, 10], got {self.noise_factor}.")

    def describe(self) -> str:
        """Words for tables and captions: "patch mask, ratio 0.75" / "Gaussian noise, std 0.5"."""
        if self.kind == "mask":
            return f"patch mask, ratio {self.mask_ratio:g}"
        return f"Gaussian noise, std {self.noise_factor:g}"


def _config(model):
    return getattr(model, "module", model).config


def own_corruption(model) -> Corruption:
    """
    The corruption `model` was trained with, from its config: `config.corruption` (else its kind's, e.g. a stock
    ViTMAE masks), its `mask_ratio` under masking and its `noise_factor` under noise.
    """
    config = _config(model)
    kind = getattr(config, "corruption", None) or kind_of(model).default_corruption
    return corruption_for(model, kind)


def corruption_for(
    model, kind: str | None = None, mask_ratio: float | None = None, noise_factor: float | None = None
) -> Corruption:
    """
    A corruption of `kind` (default: the model's own) for `model`: unspecified parameters are the model's own
    where it was trained with that kind, else the defaults (mask ratio 0.75, noise std 0.5).
    """
    config = _config(model)
    own_kind = getattr(config, "corruption", None) or kind_of(model).default_corruption
    kind = kind or own_kind
    if mask_ratio is None:
        own_ratio = getattr(config, "mask_ratio", None)
        mask_ratio = float(own_ratio) if kind == own_kind == "mask" and own_ratio is not None else DEFAULT_MASK_RATIO
    if noise_factor is None:
        factor = getattr(config, "noise_factor", None)
        noise_factor = float(factor) if kind == own_kind == "noise" and factor is not None else DEFAULT_NOISE_FACTOR
    return Corruption(kind, float(mask_ratio), float(noise_factor))


# ----------------------------------------------------------------------------------------------------------------
# Drawing: per-sample seeds

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def sample_seed(seed: int, stream: int, index: int) -> int:
    """A 64-bit generator seed for one sample; distinct `(seed, stream, index)` give unrelated seeds."""
    return _splitmix64(_splitmix64(_splitmix64(seed & _MASK64) ^ (stream & _MASK64)) ^ (index & _MASK64))


def sample_noise(
    indices: torch.Tensor, shape: tuple[int, ...], seed: int, stream: int, distribution: str
) -> torch.Tensor:
    """
    Noise whose row i depends only on `(seed, stream, indices[i])`, never on the batch it is in.

    Args:
        indices: (B,) dataset indices.
        shape: one sample's noise, e.g. (C, H, W) for Gaussian noise or (L,) for ViTMAE's mask noise.
        seed, stream: the run's seed; the epoch in training, `EVAL_STREAM` in evaluation.
        distribution: `"normal"` (standard normal) or `"uniform"` ([0, 1)).

    Returns:
        (B, *shape) float32 on the CPU.
    """
    draw = {"normal": torch.randn, "uniform": torch.rand}[distribution]
    out = torch.empty((len(indices), *shape))
    generator = torch.Generator()
    for row, index in enumerate(torch.as_tensor(indices).tolist()):
        generator.manual_seed(sample_seed(seed, stream, index))
        draw(shape, generator=generator, out=out[row])
    return out


def draw_noise(model, kind: str, indices, seed: int = EVAL_SEED, stream: int = EVAL_STREAM) -> torch.Tensor:
    """
    The randomness of a corruption for the samples `indices`: (B, L) uniform ViTMAE mask noise under `"mask"`
    (either architecture, so a ViT and a CNN get the same masks), (B, C, H, W) standard normal under `"noise"`.
    """
    if kind not in CORRUPTION_KINDS:
        raise ValueError(f"Unknown corruption {kind!r}; choose one of {list(CORRUPTION_KINDS)}.")
    config = _config(model)
    indices = torch.as_tensor(indices, dtype=torch.long).cpu()
    if kind == "mask":
        length = (config.image_size // getattr(config, "patch_size", DEFAULT_PATCH_SIZE)) ** 2
        return sample_noise(indices, (length,), seed, stream, "uniform")
    return sample_noise(indices, (config.num_channels, config.image_size, config.image_size), seed, stream, "normal")


# ----------------------------------------------------------------------------------------------------------------
# Applying: the training objective and reconstruction under any corruption


def _mae_input(model, pixel_values: torch.Tensor, noise: torch.Tensor):
    """What a ViTMAE is given under its own corruption, as `(pixel_values, noise)` for its forward: the clean image
    and the mask noise under masking; the noisy image and spatial-order token noise (mask ratio 0) under noise."""
    if own_corruption(model).kind == "mask":
        return pixel_values, noise
    noisy = add_gaussian_noise(pixel_values, model.config.noise_factor, noise)
    return noisy, spatial_order_noise(len(pixel_values), num_patches(model.config), device=pixel_values.device)


def mae_objective(model, pixel_values: torch.Tensor, noise: torch.Tensor, mask_ratio: float | None = None):
    """A ViTMAE's training objective under its own corruption, per image (see `objective`): ViTMAE's loss,
    `mae_hf.mae.masked_patch_loss` of its logits against `mae_loss_target`."""
    inner = getattr(model, "module", model)
    model_input, token_noise = _mae_input(inner, pixel_values, noise)
    if mask_ratio is None:
        out = model(pixel_values=model_input, noise=token_noise)
    else:
        out = forward_mae(inner, model_input, token_noise, mask_ratio)
    return masked_patch_loss(out.logits, mae_loss_target(inner, pixel_values), out.mask), out


def dae_objective(model, pixel_values: torch.Tensor, noise: torch.Tensor, mask_ratio: float | None = None):
    """The DAE's training objective under its own corruption, per image (see `objective`): its own loss,
    `mae_hf.modeling_dae.reconstruction_loss`, on the masked pixels under masking."""
    out = model(pixel_values, noise=noise)
    loss = getattr(model, "module", model).config.loss
    return reconstruction_loss(out.reconstruction, pixel_values, loss, out.pixel_mask, reduction="none"), out


def objective(model, pixel_values: torch.Tensor, noise: torch.Tensor, mask_ratio: float | None = None):
    """
    The training objective of a model under its own corruption, per image (gradients flow): its kind's
    (`mae_hf.registry.ModelKind.objective`).

    Args:
        model: a model of a registered kind with an objective, possibly wrapped (DDP).
        pixel_values: (B, C, H, W) clean images in [0, 1].
        noise: `draw_noise(model, own_corruption(model).kind, ...)`.
        mask_ratio: a ViTMAE's mask ratio for this call, passed to `forward_mae` (evaluation: the model is only
            read). None calls the model as is, at its config's ratio (training, where a DDP-wrapped model must be
            called through its wrapper).

    Returns:
        (losses (B,), the model's output: a ViTMAE's `logits` and `mask`, the DAE's `DAEOutput`).
    """
    kind = kind_of(model)
    if kind.objective is None:
        raise ValueError(f"The {kind.label} has no training objective in this project (its kind sets none).")
    return kind.objective(model, pixel_values, noise.to(pixel_values.device), mask_ratio)


@dataclass
class Reconstruction:
    """
    Images under one corruption and a model's answer, each (B, C, H, W) in [0, 1].

    Attributes:
        corrupted: what the model was given (masked patches 0, or the noisy image).
        reconstruction: the model's output for every pixel.
        shown: what whole-image scores are taken on: under masking the visible pixels pasted back over the
            reconstruction (for every model), under noise the reconstruction.
        pixel_mask: (B, 1, H, W), 1 = masked; None under noise.
    """

    corrupted: torch.Tensor
    reconstruction: torch.Tensor
    shown: torch.Tensor
    pixel_mask: torch.Tensor | None

    @staticmethod
    def concat(parts: list["Reconstruction"]) -> "Reconstruction":
        masks = [p.pixel_mask for p in parts]
        return Reconstruction(
            torch.cat([p.corrupted for p in parts]),
            torch.cat([p.reconstruction for p in parts]),
            torch.cat([p.shown for p in parts]),
            None if masks[0] is None else torch.cat(masks),
        )


@torch.no_grad()
def reconstruct(model, pixel_values: torch.Tensor, corruption: Corruption, noise: torch.Tensor) -> Reconstruction:
    """
    Corrupt clean images and reconstruct them with `model` in eval mode (see the module docstring).

    Args:
        model: a model of a registered kind (`mae_hf.registry`).
        pixel_values: (B, C, H, W) clean images in [0, 1].
        corruption: what to do to them. noise: `draw_noise(model, corruption.kind, ...)`.
    """
    inner = getattr(model, "module", model)
    config, kind = inner.config, kind_of(inner)
    noise = noise.to(pixel_values.device)
    if corruption.kind == "mask":
        if kind.masked_reconstruct is not None and own_corruption(inner).kind == "mask":
            with evaluating(inner):
                return Reconstruction(*kind.masked_reconstruct(inner, pixel_values, corruption.mask_ratio, noise))
        patch_size = getattr(config, "patch_size", DEFAULT_PATCH_SIZE)
        corrupted, _, pixel_mask = mask_patches(pixel_values, patch_size, corruption.mask_ratio, noise=noise)
    else:
        corrupted, pixel_mask = add_gaussian_noise(pixel_values, corruption.noise_factor, noise), None
    with evaluating(inner):
        reconstruction = kind.reconstruct(inner, corrupted)
    shown = reconstruction if pixel_mask is None else pixel_values * (1 - pixel_mask) + reconstruction * pixel_mask
    return Reconstruction(corrupted, reconstruction, shown, pixel_mask)


# ----------------------------------------------------------------------------------------------------------------
# Scoring


def psnr(x, y, pixel_mask=None) -> np.ndarray:
    """PSNR per image on [0, 1] (over the pixels where `pixel_mask` is 1, if given), capped at `PSNR_MAX`; nan for an
    image with no counted pixel."""
    values = compute_psnr(x, y) if pixel_mask is None else compute_masked_psnr(x, y, pixel_mask)
    return np.where(np.isnan(values), np.nan, np.minimum(values, PSNR_MAX))


def score(rec: Reconstruction, clean: torch.Tensor) -> dict[str, np.ndarray]:
    """
    Per-image scores (B,) float64: `psnr`, `ssim` (of `rec.shown`), `psnr_input` (of `rec.corrupted`) and, where
    some pixels are masked, `psnr_masked` (of `rec.reconstruction` on the masked pixels).
    """
    out = {
        "psnr": psnr(rec.shown, clean),
        "ssim": compute_ssim(rec.shown, clean),
        "psnr_input": psnr(rec.corrupted, clean),
    }
    if rec.pixel_mask is not None and float(rec.pixel_mask.sum()) > 0:
        out["psnr_masked"] = psnr(rec.reconstruction, clean, rec.pixel_mask)
    return out


@torch.no_grad()
def _evaluate_batch(model, pixel_values, indices, corruption: Corruption, seed: int, with_loss: bool):
    noise = draw_noise(model, corruption.kind, indices, seed, EVAL_STREAM)
    columns = {}
    if with_loss and kind_of(model).objective is not None:
        inner = getattr(model, "module", model)
        ratio = corruption.mask_ratio if corruption.kind == "mask" else inner.config.mask_ratio
        with evaluating(inner):
            losses, _ = objective(inner, pixel_values, noise, mask_ratio=ratio)
        columns["loss"] = losses.double().cpu().numpy()
    rec = reconstruct(model, pixel_values, corruption, noise)
    return columns | score(rec, pixel_values), rec


def evaluate_per_sample(
    model,
    dataloader,
    accelerator=None,
    seed: int = EVAL_SEED,
    corruption: Corruption | None = None,
) -> dict[str, np.ndarray]:
    """
    Per-image scores of `model` over a dataloader, each sample counted once, in dataset-index order.

    Args:
        model: `DAEModel` or `ViTMAEForPreTraining` (possibly prepared by `accelerator`).
        dataloader: yields `{"pixel_values": (B, C, H, W), "index": (B,)}` (`mae_hf.training.evaluation_dataloader`);
            without `"index"`, the running position is used (one process only).
        accelerator: when given (and the dataloader prepared by it), per-sample values are collected from every
            process with `gather_for_metrics`, which drops the samples padded onto the last batches.
        seed: the evaluation seed. corruption: default the model's own; `loss` (the training objective) is
            reported only under the model's own corruption.

    Returns:
        `{"index": (N,), "loss", "psnr", "ssim", "psnr_input", ["psnr_masked"]: (N,) float64}`.
    """
    inner = accelerator.unwrap_model(model) if accelerator is not None else getattr(model, "module", model)
    own = own_corruption(inner)
    corruption = corruption or own
    with_loss = corruption == own
    device = next(inner.parameters()).device
    rows, position, names = [], 0, None
    with evaluating(inner):
        for batch in dataloader:
            pixel_values = batch["pixel_values"].to(device)  # (B, C, H, W)
            indices = batch.get("index")
            if indices is None:
                if accelerator is not None and accelerator.num_processes > 1:
                    raise ValueError(
                        "With several processes each batch must carry the samples' 'index' "
                        "(use mae_hf.training.evaluation_dataloader)."
                    )
                indices = torch.arange(position, position + len(pixel_values))
            indices = indices.cpu()
            position += len(pixel_values)
            columns, _ = _evaluate_batch(inner, pixel_values, indices, corruption, seed, with_loss)
            columns = {"index": indices.double().numpy(), **columns}
            names = list(columns)
            table = torch.from_numpy(np.stack([columns[k] for k in names], axis=1))  # (B, K) float64
            if accelerator is not None:
                table = accelerator.gather_for_metrics(table.to(accelerator.device)).cpu()
            rows.append(table)
    if not rows:
        raise ValueError("The evaluation dataloader is empty.")
    table = torch.cat(rows)  # (N, K)
    index = table[:, 0].long()
    if index.unique().numel() != index.numel():
        raise RuntimeError("Evaluation counted a sample twice; is the dataloader prepared by this accelerator?")
    table = table[torch.argsort(index)]
    return {name: table[:, i].numpy() for i, name in enumerate(names)}


def evaluate(
    model, dataloader, accelerator=None, seed: int = EVAL_SEED, corruption: Corruption | None = None
) -> dict[str, float]:
    """
    Means over samples of `evaluate_per_sample` (see there), plus `num_samples`: the numbers of the training log,
    `eval_results.json` and the model card.
    """
    values = evaluate_per_sample(model, dataloader, accelerator, seed, corruption)
    metrics = {name: float(np.nanmean(v)) for name, v in values.items() if name != "index"}
    metrics["num_samples"] = int(len(values["index"]))
    return metrics


def evaluate_images(
    model,
    pixel_values: torch.Tensor,
    corruption: Corruption | None = None,
    seed: int = EVAL_SEED,
    indices=None,
    batch_size: int = 256,
) -> tuple[dict[str, np.ndarray], Reconstruction]:
    """
    `evaluate_per_sample` on images in memory (sample i has dataset index `indices[i]`, default i, so the first n
    images of a split score exactly as in the card's evaluation of that split), with the reconstructions.

    Returns:
        (`{"loss", "psnr", ...: (N,)}`, a `Reconstruction` of all N images).
    """
    indices = torch.arange(len(pixel_values)) if indices is None else torch.as_tensor(indices, dtype=torch.long)
    if len(indices) != len(pixel_values):
        raise ValueError(f"{len(indices)} indices for {len(pixel_values)} images.")
    own = own_corruption(model)
    corruption = corruption or own
    columns, parts = [], []
    with evaluating(model):
        for start in range(0, len(pixel_values), batch_size):
            part = slice(start, start + batch_size)
            c, rec = _evaluate_batch(model, pixel_values[part], indices[part], corruption, seed, corruption == own)
            columns.append(c)
            parts.append(rec)
    if not parts:
        raise ValueError("No images to evaluate.")
    values = {k: np.concatenate([c[k] for c in columns]) for k in columns[0]}
    return values, Reconstruction.concat(parts)
