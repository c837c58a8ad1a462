"""The one training loop and evaluation of this project, for both autoencoders.

`training_function(config, args)` follows accelerate's `examples/cv_example.py`: hyperparameters in one object
(`TrainingConfig`), infrastructure in another (`RunArgs`, filled from argparse by `mae_hf.training_args`), and
`Accelerator` doing device placement, multi-process data sharding, gradient accumulation, mixed precision,
checkpoints and tracking. `evaluate(model, dataloader)` is the public, reusable evaluation used by the loop, the app
and the tests.

Corruption is a function of the sample, not of the batch: each sample's Gaussian noise (DAE) or ViTMAE mask noise
(MAE) is drawn from a generator seeded by `(seed, stream, dataset index)`, where the stream is the epoch in training
and a fixed one in evaluation. So metrics do not depend on batch size or process count, a resumed run sees exactly
the noise an uninterrupted one would, and a 2-process run with the same global batch computes the same updates as a
1-process run.
"""

import json
import logging
import math
import os
import platform
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from datasets import Dataset, DatasetDict
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import SchedulerType, ViTMAEConfig, ViTMAEForPreTraining, get_scheduler

from . import cards, hub
from .configuration_dae import DAEConfig
from .corruption import add_gaussian_noise, mask_patches, spatial_order_noise
from .data import image_processor, load_image_dataset, to_pixel_values
from .mae import MAE_PRESETS, build_mae, evaluating, mask_ratio_set, reconstruct_mae
from .metrics import compute_masked_psnr, compute_psnr, compute_ssim
from .modeling_dae import DAEModel

logger = get_logger(__name__)

__all__ = [
    "MODELS",
    "CORRUPTIONS",
    "corruption_kind",
    "EVAL_SEED",
    "PSNR_MAX",
    "ConfigurationError",
    "NonFiniteLossError",
    "TrainingConfig",
    "RunArgs",
    "ImageTensorDataset",
    "collate_batch",
    "evaluation_dataloader",
    "sample_noise",
    "per_sample_loss",
    "build_model",
    "evaluate",
    "evaluate_per_sample",
    "reconstruct_under",
    "find_checkpoints",
    "training_function",
]

MODELS = ("dae", "mae")
CORRUPTIONS = ("mask", "noise")
# Each architecture's own corruption: the study's MAE masks patches, its DAE adds Gaussian noise.
DEFAULT_CORRUPTION = {"mae": "mask", "dae": "noise"}
DEFAULT_NOISE_FACTOR = 0.5
EVAL_SEED = 0
# Per-image PSNR is capped here (MSE floored at 1e-10) so that an image reproduced exactly (e.g. an MNIST digit
# whose masked patches are all background) does not make a mean infinite.
PSNR_MAX = 100.0
CHECKPOINT_PREFIXES = ("step_", "epoch_")
TRAINER_STATE = "trainer_state.json"
FINAL_FILES = ("training_args.json", "eval_results.json", "train_results.json")


class ConfigurationError(ValueError):
    """Bad arguments or inputs, found before any training work (the script exits with status 2)."""


class NonFiniteLossError(RuntimeError):
    """The loss or the gradient norm became NaN/inf; training stopped, earlier checkpoints are kept."""


# ----------------------------------------------------------------------------------------------------------------
# Hyperparameters and infrastructure


@dataclass
class TrainingConfig:
    """
    Everything that determines the trained weights (saved as `training_args.json` next to the model).

    `None` means "the model's default": `corruption` is `"mask"` for the MAE (ViTMAE's random patch masking) and
    `"noise"` for the DAE (Gaussian); the other pairing gives the two control cells of `mae-hf study` (a ViTMAE
    with masking off and noise on every patch, loss on all patches; the DAE's network fed patch-masked images, loss
    on the masked pixels). `preset` is `"mnist"` for the MAE; `mask_ratio` the preset's (0.75);
    `noise_factor` the DAE's (0.5); `weight_decay` 0.05 for the MAE (as in the MAE paper) and 0 for the DAE (the
    study's Adam). `config_overrides` sets any field of `ViTMAEConfig` / `DAEConfig`.
    """

    model: str = "dae"
    dataset: str = "mnist"
    corruption: str | None = None
    preset: str | None = None
    mask_ratio: float | None = None
    mask_ratio_range: list[float] | None = None
    noise_factor: float | None = None
    config_overrides: dict = field(default_factory=dict)
    num_train_epochs: int = 10
    max_train_steps: int | None = None
    per_device_train_batch_size: int = 64
    per_device_eval_batch_size: int = 256
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-3
    weight_decay: float | None = None
    num_warmup_steps: int = 0
    lr_scheduler_type: str = "cosine"
    max_grad_norm: float = 1.0
    seed: int = 42
    eval_seed: int = EVAL_SEED
    max_train_samples: int | None = None
    max_eval_samples: int | None = None

    def __post_init__(self):
        self.config_overrides = dict(self.config_overrides or {})
        if self.corruption is None and self.model in MODELS:
            self.corruption = DEFAULT_CORRUPTION[self.model]
        if self.model == "mae":
            self.preset = "mnist" if self.preset is None else self.preset
        if self.weight_decay is None:
            self.weight_decay = 0.05 if self.model == "mae" else 0.0
        self.validate()

    def validate(self) -> None:
        """Raise `ConfigurationError` naming the fix for any bad value (called on construction)."""

        def fail(message: str):
            raise ConfigurationError(message)

        if self.model not in MODELS:
            fail(f"Unknown model {self.model!r}; choose one of {list(MODELS)} (--model).")
        if not isinstance(self.dataset, str) or not self.dataset:
            fail("--dataset must name a dataset source, e.g. 'mnist'.")
        if self.corruption not in CORRUPTIONS:
            fail(f"Unknown corruption {self.corruption!r}; choose one of {list(CORRUPTIONS)} (--corruption).")
        if self.model == "mae":
            if self.preset not in MAE_PRESETS:
                fail(f"Unknown MAE preset {self.preset!r}; choose one of {sorted(MAE_PRESETS)} (--preset).")
        elif self.preset is not None:
            fail("--preset applies to --model mae only; the DAE takes its image size from the dataset.")
        if self.corruption == "mask":
            if self.noise_factor is not None:
                fail("--noise_factor applies to --corruption noise only; this run corrupts by masking (--mask_ratio).")
            if self.mask_ratio is not None and not 0.0 <= self.mask_ratio < 1.0:
                fail(f"--mask_ratio must be in [0, 1), got {self.mask_ratio}.")
            if self.mask_ratio_range is not None:
                r = list(self.mask_ratio_range)
                if len(r) != 2 or not 0.0 <= r[0] <= r[1] < 1.0:
                    fail(f"--mask_ratio_range must be two ratios LOW HIGH with 0 <= LOW <= HIGH < 1, got {r}.")
                self.mask_ratio_range = [float(r[0]), float(r[1])]
        else:
            if self.mask_ratio is not None or self.mask_ratio_range is not None:
                fail("--mask_ratio applies to --corruption mask only; this run corrupts with Gaussian noise "
                     "(--noise_factor).")
            if self.noise_factor is not None and self.noise_factor < 0:
                fail(f"--noise_factor must be >= 0, got {self.noise_factor}.")
        if not self.learning_rate > 0 or not math.isfinite(self.learning_rate):
            fail(f"--learning_rate must be a positive number, got {self.learning_rate}.")
        if self.weight_decay < 0:
            fail(f"--weight_decay must be >= 0, got {self.weight_decay}.")
        if not self.max_grad_norm > 0:
            fail(f"--max_grad_norm must be > 0, got {self.max_grad_norm}.")
        positive = ("num_train_epochs", "per_device_train_batch_size", "per_device_eval_batch_size",
                    "gradient_accumulation_steps")
        for name in positive:
            if int(getattr(self, name)) < 1:
                fail(f"--{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("max_train_steps", "max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                fail(f"--{name} must be >= 1 when given, got {value}.")
        if self.num_warmup_steps < 0:
            fail(f"--num_warmup_steps must be >= 0, got {self.num_warmup_steps}.")
        schedulers = [s.value for s in SchedulerType]
        if self.lr_scheduler_type not in schedulers or self.lr_scheduler_type == "reduce_lr_on_plateau":
            fail(f"Unknown --lr_scheduler_type {self.lr_scheduler_type!r}; choose one of "
                 f"{[s for s in schedulers if s != 'reduce_lr_on_plateau']}.")
        reserved = {"mask_ratio": "--mask_ratio", "noise_factor": "--noise_factor", "corruption": "--corruption"}
        for key in self.config_overrides:
            if key in reserved:
                fail(f"Set {key} with {reserved[key]}, not in --config_overrides.")
        valid = _model_config_keys(self.model)
        unknown = sorted(set(self.config_overrides) - valid)
        if unknown:
            fail(f"--config_overrides has keys {unknown} that are not fields of the {self.model.upper()} config; "
                 f"valid keys include {sorted(valid)[:12]}...")


def _model_config_keys(model: str) -> set[str]:
    config = ViTMAEConfig() if model == "mae" else DAEConfig()
    return {k for k in config.to_dict() if not k.startswith("_")} - {"transformers_version", "model_type",
                                                                      "architectures"}


@dataclass
class RunArgs:
    """
    Infrastructure: where outputs go, checkpointing, tracking, precision, Hub. None of it changes the weights.

    `checkpointing_steps`: save a checkpoint every N optimizer steps, or at the listed steps (epoch ends are always
    saved); `None` or `"epoch"` saves at epoch ends only. `checkpoints_total_limit`: keep the newest N; `None`
    keeps all (learning curves, the study's training budgets). `resume_from_checkpoint`: `"latest"` or a checkpoint folder.
    `command`: the command line recorded in the model card.
    """

    output_dir: str = "outputs/run"
    overwrite_output_dir: bool = False
    checkpointing_steps: int | str | None = None
    checkpoints_total_limit: int | None = 2
    resume_from_checkpoint: str | None = None
    with_tracking: bool = False
    report_to: str = "tensorboard"
    logging_steps: int = 10
    mixed_precision: str = "no"
    cpu: bool = False
    push_to_hub: bool = False
    hub_model_id: str | None = None
    hub_token: str | None = field(default=None, repr=False)
    hub_private_repo: bool = False
    command: str | None = None

    def to_dict(self) -> dict:
        """The fields as recorded in `training_args.json` and the trackers: the token as `hub.REDACTED`, the
        command line with every token redacted (as transformers' `TrainingArguments.to_dict`)."""
        d = asdict(self)
        if d["hub_token"]:
            d["hub_token"] = hub.REDACTED
        d["command"] = self.command or shlex.join(sys.argv)
        return hub.redact_values(d, hub.known_tokens(self.hub_token))

    def validate(self) -> None:
        steps = self.checkpointing_steps
        if isinstance(steps, str) and steps != "epoch":
            parts = [p.strip() for p in steps.split(",")]
            if not all(p.isdigit() for p in parts):
                raise ConfigurationError(
                    "--checkpointing_steps must be a positive integer (every N steps), a comma-separated list of "
                    f"steps (e.g. 188,469) or 'epoch', got {steps!r}."
                )
            steps = int(parts[0]) if len(parts) == 1 else sorted({int(p) for p in parts})
        if isinstance(steps, (list, tuple)):
            steps = sorted({int(p) for p in steps})
        values = steps if isinstance(steps, list) else [steps] if isinstance(steps, int) else []
        if any(v < 1 for v in values):
            raise ConfigurationError(f"--checkpointing_steps must be >= 1, got {self.checkpointing_steps}.")
        self.checkpointing_steps = steps
        if self.checkpoints_total_limit is not None and self.checkpoints_total_limit < 1:
            raise ConfigurationError(f"--checkpoints_total_limit must be >= 1, got {self.checkpoints_total_limit}.")
        if self.with_tracking and self.report_to in ("tensorboard", "all"):
            import importlib.util

            if importlib.util.find_spec("tensorboard") is None and importlib.util.find_spec("tensorboardX") is None:
                raise ConfigurationError(
                    "--with_tracking logs to TensorBoard, which is not installed: `pip install tensorboard` (or "
                    "mae_hf[tracking]), or choose another tracker with --report_to."
                )
        if self.logging_steps < 1:
            raise ConfigurationError(f"--logging_steps must be >= 1, got {self.logging_steps}.")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ConfigurationError(f"--mixed_precision must be one of no, fp16, bf16; got {self.mixed_precision!r}.")
        resume = self.resume_from_checkpoint
        if resume not in (None, "", "latest") and not (Path(resume) / TRAINER_STATE).is_file():
            raise ConfigurationError(
                f"--resume_from_checkpoint {resume!r} is not a checkpoint folder (no {TRAINER_STATE}); pass 'latest' "
                "or a step_N / epoch_N folder written by this script."
            )


# ----------------------------------------------------------------------------------------------------------------
# Data: images decoded once, batches carry each sample's dataset index


class ImageTensorDataset(torch.utils.data.Dataset):
    """
    A split decoded once into a uint8 tensor (N, C, H, W); an item is `{"pixel_values": (C, H, W) float in [0, 1],
    "index": int}`. `__getitems__` builds a whole batch with one indexing op (see `collate_batch`).

    The index is what makes corruption a function of the sample (see `sample_noise`).
    """

    def __init__(self, images: torch.Tensor):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"`images` must be a uint8 tensor (N, C, H, W), got {images.dtype} {tuple(images.shape)}.")
        self.images = images

    @classmethod
    def from_dataset(
        cls, ds: Dataset, num_channels: int, image_size: int, max_samples: int | None = None, chunk_size: int = 2048
    ) -> "ImageTensorDataset":
        """Decode a `load_image_dataset` split (its first `max_samples` rows) at the model's size and channels."""
        n = len(ds) if max_samples is None else min(max_samples, len(ds))
        chunks = []
        for start in range(0, n, chunk_size):
            rows = ds.select(range(start, min(start + chunk_size, n)))["image"]
            pixels = to_pixel_values(rows, num_channels=num_channels, image_size=image_size)  # (b, C, H, W), k/255
            chunks.append((pixels * 255).round().to(torch.uint8))
        return cls(torch.cat(chunks))

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> dict:
        return {"pixel_values": self.images[index].float() / 255, "index": int(index)}

    def __getitems__(self, indices: list[int]) -> dict:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return {"pixel_values": self.images[idx].float() / 255, "index": idx}  # (B, C, H, W), (B,)


def collate_batch(batch) -> dict[str, torch.Tensor]:
    """Collate for `ImageTensorDataset`: passes through a batch built by `__getitems__`, stacks single items."""
    if isinstance(batch, dict):
        return batch
    return {
        "pixel_values": torch.stack([row["pixel_values"] for row in batch]),
        "index": torch.tensor([row["index"] for row in batch], dtype=torch.long),
    }


def evaluation_dataloader(
    split: Dataset, model, batch_size: int = 256, max_samples: int | None = None
) -> DataLoader:
    """
    A deterministic (unshuffled) loader over a `load_image_dataset` split, decoded at `model`'s image size and
    channels, for `evaluate`.
    """
    image_size, num_channels = model.config.image_size, model.config.num_channels
    data = ImageTensorDataset.from_dataset(split, num_channels, image_size, max_samples=max_samples)
    return DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collate_batch)


# ----------------------------------------------------------------------------------------------------------------
# Corruption and loss, per sample

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
        shape: shape of one sample's noise, e.g. (C, H, W) for the DAE or (L,) for ViTMAE's mask noise.
        seed, stream: the run's seed; the epoch in training, a fixed stream in evaluation.
        distribution: `"normal"` (standard normal) or `"uniform"` ([0, 1)).

    Returns:
        (B, *shape) float32 on the CPU.
    """
    draw = {"normal": torch.randn, "uniform": torch.rand}[distribution]
    out = torch.empty((len(indices), *shape))
    generator = torch.Generator()
    for row, index in enumerate(indices.tolist()):
        generator.manual_seed(sample_seed(seed, stream, index))
        draw(shape, generator=generator, out=out[row])
    return out


def batch_mask_ratio(mask_ratio_range: list[float], seed: int, epoch: int, batch: int) -> float:
    """
    The mask ratio of one training batch under `--mask_ratio_range LOW HIGH`: uniform in [LOW, HIGH], a function of
    (seed, epoch, batch position in the epoch) only, so every process uses the same ratio for its shard of a global
    batch and a resumed run draws the same ratios.
    """
    low, high = mask_ratio_range
    generator = torch.Generator().manual_seed(sample_seed(seed ^ 0x6D61736B, epoch + 1, batch))
    return low + (high - low) * float(torch.rand((), generator=generator))


def model_kind(model) -> str:
    """`"mae"` for a `ViTMAEForPreTraining`, `"dae"` for a `DAEModel` (unwrapping DDP and compiled modules)."""
    inner = getattr(model, "module", model)
    inner = getattr(inner, "_orig_mod", inner)
    if isinstance(inner, ViTMAEForPreTraining):
        return "mae"
    if isinstance(inner, DAEModel):
        return "dae"
    raise TypeError(f"Expected a ViTMAEForPreTraining or a DAEModel, got {type(inner).__name__}.")


def corruption_kind(model) -> str:
    """
    How `model` is corrupted in training and evaluation: `"mask"` (random patches, ViTMAE's noise semantics) or
    `"noise"` (Gaussian). From `config.corruption`; a ViTMAE config without one (a stock MAE) masks.
    """
    config = getattr(model, "module", model).config
    return getattr(config, "corruption", None) or DEFAULT_CORRUPTION[model_kind(model)]


def num_patches_of(config) -> int:
    return (config.image_size // config.patch_size) ** 2


def batch_noise(model, indices: torch.Tensor, seed: int, stream: int, corruption: str | None = None) -> torch.Tensor:
    """
    The corruption noise of a batch for `model`: (B, L) uniform mask noise under masking (either architecture, so a
    ViT and a CNN see the same masks), (B, C, H, W) standard normal under Gaussian noise. `corruption` defaults to
    the model's own.
    """
    config = getattr(model, "module", model).config
    if (corruption or corruption_kind(model)) == "mask":
        return sample_noise(indices, (num_patches_of(config),), seed, stream, "uniform")
    return sample_noise(indices, (config.num_channels, config.image_size, config.image_size), seed, stream, "normal")


def mae_per_sample_loss(model: ViTMAEForPreTraining, pixel_values, logits, mask) -> torch.Tensor:
    """
    ViTMAE's objective per image: MSE of the predicted patches on the masked ones (on all patches at mask ratio 0,
    where ViTMAE's own loss divides by zero).

    Args:
        model: the unwrapped MAE (for `patchify` and `norm_pix_loss`).
        pixel_values: (B, C, H, W). logits: (B, L, p*p*C). mask: (B, L), 1 = removed.

    Returns:
        (B,) losses; their mean equals ViTMAE's `loss` whenever the mask is not empty.
    """
    target = model.patchify(pixel_values)  # (B, L, p*p*C)
    if model.config.norm_pix_loss:
        mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1.0e-6) ** 0.5
    per_patch = ((logits - target) ** 2).mean(dim=-1)  # (B, L)
    weight = torch.where(mask.sum(dim=1, keepdim=True) > 0, mask, torch.ones_like(mask))
    return (per_patch * weight).sum(dim=1) / weight.sum(dim=1)


def dae_per_sample_loss(model: DAEModel, pixel_values, reconstruction, pixel_mask=None) -> torch.Tensor:
    """
    The DAE's loss (`config.loss`, mse or bce) per image: (B,), over every pixel, or over the masked ones where
    `pixel_mask` (B, 1, H, W) is given (all pixels for an image with none masked).
    """
    if model.config.loss == "bce":
        per_pixel = F.binary_cross_entropy(reconstruction, pixel_values, reduction="none")
    else:
        per_pixel = (reconstruction - pixel_values) ** 2
    if pixel_mask is None:
        return per_pixel.flatten(1).mean(dim=1)
    weight = pixel_mask.to(per_pixel).expand_as(per_pixel).flatten(1)  # (B, C*H*W)
    weight = torch.where(weight.sum(dim=1, keepdim=True) > 0, weight, torch.ones_like(weight))
    return (per_pixel.flatten(1) * weight).sum(dim=1) / weight.sum(dim=1)


def mae_input(model: ViTMAEForPreTraining, pixel_values: torch.Tensor, noise: torch.Tensor):
    """
    What a ViTMAE is given under its corruption, as `(pixel_values, noise)` for its forward: the clean image and the
    mask noise under masking; under Gaussian noise the noisy image and spatial-order token noise (mask ratio 0).
    """
    if corruption_kind(model) == "mask":
        return pixel_values, noise
    config = getattr(model, "module", model).config
    noisy = add_gaussian_noise(pixel_values, config.noise_factor, noise)
    return noisy, spatial_order_noise(len(pixel_values), num_patches_of(config), device=pixel_values.device)


def per_sample_loss(model, pixel_values: torch.Tensor, noise: torch.Tensor):
    """
    One forward pass of either model under the given corruption noise.

    Args:
        model: a `DAEModel` or `ViTMAEForPreTraining`, possibly wrapped (DDP); called as is, so gradients flow.
        pixel_values: (B, C, H, W) clean images in [0, 1].
        noise: from `batch_noise`: (B, L) mask noise under masking, (B, C, H, W) Gaussian noise otherwise.

    Returns:
        (losses (B,), model output).
    """
    inner = getattr(model, "module", model)
    noise = noise.to(pixel_values.device)
    if model_kind(model) == "mae":
        model_input, token_noise = mae_input(inner, pixel_values, noise)
        out = model(pixel_values=model_input, noise=token_noise)
        return mae_per_sample_loss(inner, pixel_values, out.logits, out.mask), out
    out = model(pixel_values, noise=noise)
    return dae_per_sample_loss(inner, pixel_values, out.reconstruction, out.pixel_mask), out


@torch.no_grad()
def reconstruct_under(
    model, pixel_values: torch.Tensor, noise: torch.Tensor, corruption: str | None = None,
    mask_ratio: float | None = None, noise_factor: float | None = None,
) -> dict[str, torch.Tensor | None]:
    """
    Corrupt clean images and reconstruct them with `model` (eval mode), under its own corruption or the other one,
    so every model of the architecture × corruption grid can be scored on the same corrupted images.

    - masking: a ViTMAE trained with masking drops the masked tokens (its own mechanism); any other model gets the
      image with the masked patches set to 0 (a ViTMAE then runs with masking off, tokens in spatial order).
      Whole-image metrics use the visible pixels pasted back.
    - noise: every model gets `clamp(x + noise_factor * noise, 0, 1)` (a ViTMAE with masking off).

    Args:
        model: a `DAEModel` or `ViTMAEForPreTraining`.
        pixel_values: (B, C, H, W) clean images in [0, 1].
        noise: the corruption's noise, as `batch_noise(model, ..., corruption=corruption)` draws it.
        corruption: `"mask"` or `"noise"` (default: the model's own).
        mask_ratio / noise_factor: default to the model's own, else 0.75 / 0.5.

    Returns:
        `{"corrupted", "reconstruction", "shown" (B, C, H, W), "pixel_mask" (B, 1, H, W), 1 = masked, or None}`.
    """
    inner = getattr(model, "module", model)
    config, own = inner.config, corruption_kind(inner)
    corruption = corruption or own
    if corruption not in CORRUPTIONS:
        raise ValueError(f"Unknown corruption {corruption!r}; choose one of {list(CORRUPTIONS)}.")
    is_mae = model_kind(inner) == "mae"
    if corruption == "mask":
        if mask_ratio is None:
            mask_ratio = config.mask_ratio if own == "mask" else MAE_PRESETS["mnist"]["mask_ratio"]
        if is_mae and own == "mask":
            rec = reconstruct_mae(inner, pixel_values, mask_ratio=mask_ratio, noise=noise)
            return {"corrupted": rec.masked_input, "reconstruction": rec.reconstruction, "shown": rec.pasted,
                    "pixel_mask": rec.pixel_mask}
        corrupted, _, pixel_mask = mask_patches(pixel_values, config.patch_size, mask_ratio, noise=noise)
    else:
        if noise_factor is None:
            noise_factor = getattr(config, "noise_factor", None)
            noise_factor = DEFAULT_NOISE_FACTOR if noise_factor is None else noise_factor
        corrupted, pixel_mask = add_gaussian_noise(pixel_values, noise_factor, noise), None
    with evaluating(inner, 0.0 if is_mae else None):
        if is_mae:
            order = spatial_order_noise(len(pixel_values), num_patches_of(config), device=pixel_values.device)
            reconstruction = inner.unpatchify(inner(pixel_values=corrupted, noise=order).logits).clamp(0, 1)
        else:
            reconstruction = inner(pixel_values, corrupted_pixel_values=corrupted).reconstruction
    shown = reconstruction if pixel_mask is None else pixel_values * (1 - pixel_mask) + reconstruction * pixel_mask
    return {"corrupted": corrupted, "reconstruction": reconstruction, "shown": shown, "pixel_mask": pixel_mask}


# ----------------------------------------------------------------------------------------------------------------
# Evaluation


def _psnr(x, y) -> np.ndarray:
    return np.minimum(compute_psnr(x, y), PSNR_MAX)


@torch.no_grad()
def evaluate_per_sample(
    model, dataloader, accelerator: Accelerator | None = None, seed: int = EVAL_SEED
) -> dict[str, np.ndarray]:
    """
    `evaluate`'s per-image values: `{"index": (N,) dataset indices, sorted, "loss", "psnr", ...: (N,) float64}`.
    See `evaluate` for the arguments and what each metric measures.
    """
    inner = accelerator.unwrap_model(model) if accelerator is not None else getattr(model, "module", model)
    was_training = inner.training
    inner.eval()
    device = next(inner.parameters()).device
    rows, position = [], 0
    try:
        for batch in dataloader:
            pixel_values = batch["pixel_values"].to(device)  # (B, C, H, W)
            b = pixel_values.shape[0]
            indices = batch.get("index")
            if indices is None:
                if accelerator is not None and accelerator.num_processes > 1:
                    raise ValueError("With several processes each batch must carry the samples' 'index' "
                                     "(use ImageTensorDataset / evaluation_dataloader).")
                indices = torch.arange(position, position + b)
            indices = indices.cpu()
            position += b
            noise = batch_noise(inner, indices, seed, stream=0)
            losses, _ = per_sample_loss(inner, pixel_values, noise)
            columns = {"index": indices.double().numpy(), "loss": losses.double().cpu().numpy()}
            r = reconstruct_under(inner, pixel_values, noise)
            columns["psnr"] = _psnr(r["shown"], pixel_values)
            columns["ssim"] = compute_ssim(r["shown"], pixel_values)
            columns["psnr_input"] = _psnr(r["corrupted"], pixel_values)
            if r["pixel_mask"] is not None and float(inner.config.mask_ratio) > 0:
                masked = compute_masked_psnr(r["reconstruction"], pixel_values, r["pixel_mask"])
                columns["psnr_masked"] = np.minimum(masked, PSNR_MAX)
            names = list(columns)
            table = torch.from_numpy(np.stack([columns[k] for k in names], axis=1))  # (B, K) float64
            if accelerator is not None:
                table = accelerator.gather_for_metrics(table.to(accelerator.device)).cpu()
            rows.append(table)
    finally:
        inner.train(was_training)
    if not rows:
        raise ValueError("The evaluation dataloader is empty.")
    table = torch.cat(rows)  # (N, K)
    index = table[:, 0].long()
    if index.unique().numel() != index.numel():
        raise RuntimeError("Evaluation counted a sample twice; is the dataloader prepared by this accelerator?")
    table = table[torch.argsort(index)]
    return {name: table[:, i].numpy() for i, name in enumerate(names)}


def evaluate(model, dataloader, accelerator: Accelerator | None = None, seed: int = EVAL_SEED) -> dict[str, float]:
    """
    Test metrics of a DAE or an MAE (either corruption), each sample counted once, independent of batch size and
    process count.

    Each sample is corrupted with noise seeded by `(seed, its dataset index)` (`sample_noise`): Gaussian noise at the
    model's `noise_factor`, or a ViTMAE-style patch mask at its `mask_ratio` (`corruption_kind`). All images are on
    [0, 1].

    Args:
        model: `DAEModel` or `ViTMAEForPreTraining` (possibly prepared by `accelerator`).
        dataloader: yields `{"pixel_values": (B, C, H, W), "index": (B,)}` (`evaluation_dataloader`,
            `ImageTensorDataset`); without `"index"`, the running position is used (one process only).
        accelerator: when given (and the dataloader prepared by it), per-sample values are collected from every
            process with `gather_for_metrics`, which drops the samples padded onto the last batches.
        seed: the evaluation noise seed.

    Returns:
        `{"loss", "psnr", "ssim", "psnr_input", ["psnr_masked"], "num_samples"}`, means over samples:
        `loss` is the model's objective (MAE: MSE on the masked patches); `psnr`/`ssim` compare the output with the
        clean image (under masking: the reconstruction with the visible patches pasted back, as
        `reconstruct_mae(...).pasted`); `psnr_input` compares the corrupted input with the clean image;
        `psnr_masked` (masking with a non-empty mask) counts the masked pixels only. Per-image PSNR is capped at
        `PSNR_MAX` dB.
    """
    values = evaluate_per_sample(model, dataloader, accelerator, seed)
    metrics = {name: float(v.mean()) for name, v in values.items() if name != "index"}
    metrics["num_samples"] = int(len(values["index"]))
    return metrics


# ----------------------------------------------------------------------------------------------------------------
# Model


def _image_shape(split: Dataset) -> tuple[int, int]:
    """(image_size, num_channels) of a split's first image; raises for non-square images."""
    image = split[0]["image"]
    width, height = image.size
    if width != height:
        raise ConfigurationError(f"Images must be square; the dataset's first image is {width}x{height}.")
    return width, 1 if image.mode in ("L", "1", "I", "I;16", "F") else 3


def build_model(config: TrainingConfig, image_size: int, num_channels: int):
    """
    The model `config` describes, for images of the dataset's size: the MAE only through `build_mae` (sin-cos
    positions set), the DAE through `DAEConfig`/`DAEModel`. Raises `ConfigurationError` when the MAE preset (or
    an override) does not match the images.
    """
    overrides = dict(config.config_overrides)
    if config.model == "mae":
        if config.corruption == "noise":  # the ViT + Gaussian noise cell: masking off, noise on every patch
            overrides.update(mask_ratio=0.0, corruption="noise",
                             noise_factor=DEFAULT_NOISE_FACTOR if config.noise_factor is None else config.noise_factor)
        elif config.mask_ratio is not None:
            overrides["mask_ratio"] = config.mask_ratio
        preset = {**MAE_PRESETS[config.preset], **overrides}
        if (preset["image_size"], preset["num_channels"]) != (image_size, num_channels):
            matching = [name for name, p in MAE_PRESETS.items()
                        if (p["image_size"], p["num_channels"]) == (image_size, num_channels)]
            hint = f"use --preset {matching[0]}" if matching else "set image_size/num_channels in --config_overrides"
            raise ConfigurationError(
                f"MAE preset {config.preset!r} expects {preset['image_size']}x{preset['image_size']}x"
                f"{preset['num_channels']} images but dataset {config.dataset!r} has {image_size}x{image_size}x"
                f"{num_channels}; {hint}."
            )
        try:
            return build_mae(config.preset, seed=config.seed, **overrides)
        except ValueError as err:
            raise ConfigurationError(str(err)) from err
    overrides.setdefault("image_size", image_size)
    overrides.setdefault("num_channels", num_channels)
    if (overrides["image_size"], overrides["num_channels"]) != (image_size, num_channels):
        raise ConfigurationError(
            f"--config_overrides asks for {overrides['image_size']}x{overrides['image_size']}x"
            f"{overrides['num_channels']} but dataset {config.dataset!r} has {image_size}x{image_size}x{num_channels}."
        )
    overrides["corruption"] = config.corruption
    if config.noise_factor is not None:
        overrides["noise_factor"] = config.noise_factor
    if config.mask_ratio is not None:
        overrides["mask_ratio"] = config.mask_ratio
    try:
        dae_config = DAEConfig(**overrides)
    except (TypeError, ValueError) as err:
        raise ConfigurationError(str(err)) from err
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        return DAEModel(dae_config)


def _optimizer_groups(model, weight_decay: float) -> list[dict]:
    """Weight decay on weight matrices and kernels only (not biases, norms, cls/mask tokens), as the original MAE."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim <= 1 or "token" in name else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints


def find_checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints (`step_N`/`epoch_N` with a trainer state) in `output_dir` as (completed steps, path), oldest first."""
    found = []
    root = Path(output_dir)
    if not root.is_dir():
        return found
    for path in root.iterdir():
        state = path / TRAINER_STATE
        if path.is_dir() and path.name.startswith(CHECKPOINT_PREFIXES) and state.is_file():
            found.append((json.loads(state.read_text())["completed_steps"], path))
    return sorted(found)


def _save_checkpoint(accelerator: Accelerator, output_dir: Path, name: str, state: dict, limit: int | None) -> None:
    """`save_state` into a temporary folder, then rename: a checkpoint folder exists only once complete."""
    final, tmp = output_dir / name, output_dir / f".tmp-{name}"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / TRAINER_STATE).write_text(json.dumps(state, indent=2))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        checkpoints = find_checkpoints(output_dir)
        for _, old in checkpoints[: max(0, len(checkpoints) - limit)] if limit else []:
            shutil.rmtree(old)
        logger.info(f"Saved checkpoint {final}")
    accelerator.wait_for_everyone()


def _resolve_resume(args: RunArgs, output_dir: Path) -> Path | None:
    if not args.resume_from_checkpoint:
        return None
    if args.resume_from_checkpoint != "latest":
        return Path(args.resume_from_checkpoint)
    checkpoints = find_checkpoints(output_dir)
    if not checkpoints:
        logger.warning(f"--resume_from_checkpoint latest: no checkpoint in {output_dir}; starting from scratch.")
        return None
    return checkpoints[-1][1]


def _prepare_output_dir(args: RunArgs, output_dir: Path, resuming: bool, is_main: bool) -> None:
    """Refuse to mix a new run into an old folder unless asked; with --overwrite_output_dir drop old checkpoints."""
    existing = [p for p in output_dir.iterdir()] if output_dir.is_dir() else []
    if existing and not resuming and not args.overwrite_output_dir:
        raise ConfigurationError(
            f"--output_dir {str(output_dir)!r} already exists and is not empty; pass --overwrite_output_dir to start "
            "a new run there, or --resume_from_checkpoint latest to continue the run it holds."
        )
    if is_main and args.overwrite_output_dir and not resuming:
        for path in existing:
            if path.is_dir() and (path.name.startswith(CHECKPOINT_PREFIXES) or path.name.startswith(".tmp-")):
                shutil.rmtree(path)


# ----------------------------------------------------------------------------------------------------------------
# The loop


def _hardware(accelerator: Accelerator) -> str:
    if accelerator.device.type == "cuda":
        name = torch.cuda.get_device_name(accelerator.device)
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        name = f"CPU ({name}), {torch.get_num_threads()} torch threads per process"
    return f"{accelerator.num_processes} x {name}"


def training_function(config: TrainingConfig, args: RunArgs, data: DatasetDict | None = None) -> dict:
    """
    Train a DAE or an MAE as `config` says and write a Hub-ready folder to `args.output_dir`.

    Writes `config.json`, `model.safetensors` (plus the DAE's code for `trust_remote_code`), `training_args.json`,
    `eval_results.json` (final test metrics, see `evaluate`), `train_results.json`, the model card `README.md`,
    `step_N`/`epoch_N` checkpoints and, with tracking, TensorBoard logs in `runs/`. Everything that can be checked is
    checked before any work (`ConfigurationError`). A NaN/inf loss or gradient norm raises `NonFiniteLossError`
    naming the step, before that step changes the weights; the checkpoints saved so far stay.

    Args:
        config: hyperparameters.
        args: infrastructure (see `RunArgs`).
        data: an already loaded `load_image_dataset` result; loaded from `config.dataset` when `None`.

    Returns:
        `{"eval": final test metrics, "train": train_results}`.
    """
    config.validate()
    args.validate()
    output_dir = Path(args.output_dir)
    repo_id = None
    if args.push_to_hub:
        try:
            repo_id = hub.check_push_access(args.hub_model_id or output_dir.resolve().name, token=args.hub_token)
        except ValueError as err:
            raise ConfigurationError(str(err)) from err

    accelerator = Accelerator(
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        cpu=args.cpu,
        log_with=args.report_to if args.with_tracking else None,
        project_dir=str(output_dir),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=config.seed),
    )
    if accelerator.is_main_process:
        logging.getLogger("mae_hf").setLevel(logging.INFO)

    if data is None:
        try:
            data = load_image_dataset(config.dataset)
        except ValueError as err:
            raise ConfigurationError(str(err)) from err
    image_size, num_channels = _image_shape(data["train"])
    set_seed(config.seed)
    model = build_model(config, image_size, num_channels)
    checkpoint = _resolve_resume(args, output_dir)
    _prepare_output_dir(args, output_dir, checkpoint is not None or args.resume_from_checkpoint == "latest",
                        accelerator.is_main_process)
    accelerator.wait_for_everyone()

    # Data: decoded once; a seeded order (same on every process) that depends only on (seed, epoch).
    train_set = ImageTensorDataset.from_dataset(data["train"], num_channels, image_size, config.max_train_samples)
    test_set = ImageTensorDataset.from_dataset(data["test"], num_channels, image_size, config.max_eval_samples)
    train_dataloader = DataLoader(train_set, batch_size=config.per_device_train_batch_size, shuffle=True,
                                  collate_fn=collate_batch)
    eval_dataloader = DataLoader(test_set, batch_size=config.per_device_eval_batch_size, shuffle=False,
                                 collate_fn=collate_batch)

    # Fused AdamW: one kernel instead of a Python loop over parameters (3 ms instead of 15 ms per step for the MNIST
    # MAE on one CPU thread, ~4% of a step; see benchmarks/train_throughput.py).
    fused = accelerator.device.type in ("cpu", "cuda")
    optimizer = torch.optim.AdamW(_optimizer_groups(model, config.weight_decay), lr=config.learning_rate, fused=fused)
    # Steps are counted on the prepared (sharded) loader, as in transformers' *_no_trainer.py examples.
    num_update_steps_per_epoch = math.ceil(
        math.ceil(len(train_set) / (config.per_device_train_batch_size * accelerator.num_processes))
        / config.gradient_accumulation_steps
    )
    max_train_steps = config.max_train_steps or config.num_train_epochs * num_update_steps_per_epoch
    num_train_epochs = math.ceil(max_train_steps / num_update_steps_per_epoch)
    # The prepared scheduler steps once per process per optimizer step, hence the factor.
    lr_scheduler = get_scheduler(
        config.lr_scheduler_type,
        optimizer=optimizer,
        num_warmup_steps=config.num_warmup_steps * accelerator.num_processes,
        num_training_steps=max_train_steps * accelerator.num_processes,
    )
    model, optimizer, train_dataloader, eval_dataloader, lr_scheduler = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader, lr_scheduler
    )
    unwrapped = accelerator.unwrap_model(model)
    if len(train_dataloader) == 0:
        raise ConfigurationError("The training split is empty.")

    recorded_args = args.to_dict()
    hyperparameters = hub.redact_values({**asdict(config), **recorded_args}, hub.known_tokens(args.hub_token))
    if args.with_tracking:
        tracked = {k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in hyperparameters.items()
                   if isinstance(v, (int, float, str, bool, dict, list))}
        accelerator.init_trackers("runs", tracked)

    # Resume: weights, optimizer, scheduler, RNG states; then the position inside the epoch.
    state = {"completed_steps": 0, "epoch": 0, "batches_in_epoch": 0, "epoch_loss_sum": 0.0, "epoch_loss_count": 0,
             "train_runtime": 0.0, "train_samples": 0, "log_history": []}
    if checkpoint is not None:
        accelerator.load_state(str(checkpoint))
        state = json.loads((checkpoint / TRAINER_STATE).read_text())
    completed_steps, starting_epoch = state["completed_steps"], state["epoch"]
    resume_batches = state["batches_in_epoch"]
    if checkpoint is not None:
        accelerator.print(f"Resuming from checkpoint {checkpoint} (step {completed_steps}, epoch {starting_epoch}, "
                          f"batch {resume_batches} of {len(train_dataloader)})")

    total_batch_size = config.per_device_train_batch_size * accelerator.num_processes * config.gradient_accumulation_steps
    accelerator.print(
        f"***** Training {config.model.upper()} on {config.dataset} *****\n"
        f"  examples: {len(train_set)} train / {len(test_set)} test, epochs = {num_train_epochs}, "
        f"optimisation steps = {max_train_steps}, total batch size = {total_batch_size} "
        f"({accelerator.num_processes} process(es) on {accelerator.device})"
    )
    progress_bar = tqdm(range(max_train_steps), initial=completed_steps,
                        disable=not accelerator.is_local_main_process)
    eval_metrics, evaluated_this_run = None, False
    step_every = args.checkpointing_steps if isinstance(args.checkpointing_steps, int) else None
    step_list = set(args.checkpointing_steps) if isinstance(args.checkpointing_steps, list) else set()

    def checkpoint_state(epoch: int, batches: int, loss_sum: float, loss_count: int) -> dict:
        return {**state, "completed_steps": completed_steps, "epoch": epoch, "batches_in_epoch": batches,
                "epoch_loss_sum": loss_sum, "epoch_loss_count": loss_count}

    for epoch in range(starting_epoch, num_train_epochs):
        if completed_steps >= max_train_steps:
            break
        model.train()
        train_dataloader.set_epoch(epoch)
        skip = resume_batches if epoch == starting_epoch else 0
        active_dataloader = accelerator.skip_first_batches(train_dataloader, skip) if skip else train_dataloader
        batches_in_epoch = skip
        loss_sum, loss_count = (state["epoch_loss_sum"], state["epoch_loss_count"]) if skip else (0.0, 0)
        tick = time.perf_counter()
        for batch in active_dataloader:
            with accelerator.accumulate(model):
                noise = batch_noise(unwrapped, batch["index"].cpu(), config.seed, stream=epoch + 1)
                ratio = (unwrapped.config.mask_ratio if config.mask_ratio_range is None
                         else batch_mask_ratio(config.mask_ratio_range, config.seed, epoch, batches_in_epoch))
                with mask_ratio_set(unwrapped, ratio):
                    losses, _ = per_sample_loss(model, batch["pixel_values"], noise)
                loss = losses.mean()
                mean_loss = accelerator.reduce(loss.detach(), reduction="mean")  # same on every process
                if not torch.isfinite(mean_loss):
                    raise NonFiniteLossError(
                        f"Non-finite training loss ({mean_loss.item()}) at step {completed_steps + 1} (epoch {epoch}); "
                        f"the weights of step {completed_steps} are intact and the checkpoints in {output_dir} are "
                        "kept. Lower --learning_rate or raise --num_warmup_steps."
                    )
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    grad_norm = accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                    if accelerator.scaler is None and not torch.isfinite(torch.as_tensor(grad_norm)):
                        raise NonFiniteLossError(
                            f"Non-finite gradient norm at step {completed_steps + 1} (epoch {epoch}); the weights of "
                            f"step {completed_steps} are intact and the checkpoints in {output_dir} are kept."
                        )
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad()
            batches_in_epoch += 1
            loss_sum, loss_count = loss_sum + mean_loss.item(), loss_count + 1
            state["train_samples"] += len(batch["index"]) * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            completed_steps += 1
            progress_bar.update(1)
            if completed_steps % args.logging_steps == 0 or completed_steps == max_train_steps:
                progress_bar.set_postfix(loss=f"{mean_loss.item():.4f}")
                if args.with_tracking:
                    accelerator.log({"train_loss": mean_loss.item(), "learning_rate": lr_scheduler.get_last_lr()[0],
                                     "epoch": epoch}, step=completed_steps)
            epoch_done = batches_in_epoch == len(train_dataloader)
            if ((step_every and completed_steps % step_every == 0) or completed_steps in step_list) and not epoch_done:
                state["train_runtime"] += time.perf_counter() - tick
                _save_checkpoint(accelerator, output_dir, f"step_{completed_steps}",
                                 checkpoint_state(epoch, batches_in_epoch, loss_sum, loss_count),
                                 args.checkpoints_total_limit)
                tick = time.perf_counter()
            if completed_steps >= max_train_steps:
                break
        state["train_runtime"] += time.perf_counter() - tick

        eval_metrics = evaluate(model, eval_dataloader, accelerator, seed=config.eval_seed)
        evaluated_this_run = True
        train_loss = loss_sum / max(loss_count, 1)
        state["log_history"].append({"epoch": epoch, "step": completed_steps, "train_loss": train_loss,
                                     **{f"test_{k}": v for k, v in eval_metrics.items()}})
        accelerator.print(
            f"epoch {epoch}: step {completed_steps}/{max_train_steps}, train loss {train_loss:.5f}, "
            + ", ".join(f"test {k} {v:.4f}" for k, v in eval_metrics.items() if k != "num_samples")
        )
        if args.with_tracking:
            accelerator.log({"epoch_train_loss": train_loss,
                             **{f"test_{k}": v for k, v in eval_metrics.items()}}, step=completed_steps)
        if batches_in_epoch == len(train_dataloader):
            _save_checkpoint(accelerator, output_dir, f"epoch_{epoch}", checkpoint_state(epoch + 1, 0, 0.0, 0),
                             args.checkpoints_total_limit)
    progress_bar.close()

    if not evaluated_this_run:  # resumed from the last checkpoint: nothing left to train
        eval_metrics = evaluate(model, eval_dataloader, accelerator, seed=config.eval_seed)
    train_results = {
        "completed_steps": completed_steps,
        "epochs": num_train_epochs,
        "train_samples": state["train_samples"],
        "train_runtime": round(state["train_runtime"], 3),
        "train_samples_per_second": round(state["train_samples"] / max(state["train_runtime"], 1e-9), 3),
        "final_train_loss": state["log_history"][-1]["train_loss"] if state["log_history"] else None,
        "num_parameters": unwrapped.num_parameters(),
        "num_processes": accelerator.num_processes,
        "total_train_batch_size": total_batch_size,
        "mixed_precision": args.mixed_precision,
        "hardware": _hardware(accelerator),
        "command": recorded_args["command"],
        "num_train_examples": len(train_set),
        "num_eval_examples": len(test_set),
        "log_history": state["log_history"],
    }
    if args.with_tracking:
        accelerator.end_training()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _write_final_folder(unwrapped, output_dir, config, hyperparameters, eval_metrics, train_results,
                            hub.redact(repo_id or args.hub_model_id or str(output_dir), hub.known_tokens(args.hub_token)))
        if repo_id is not None:
            url = hub.publish(output_dir, repo_id, token=args.hub_token, private=args.hub_private_repo)
            accelerator.print(f"Pushed {output_dir} to {url}")
    accelerator.wait_for_everyone()
    return {"eval": eval_metrics, "train": train_results}


def _write_final_folder(model, output_dir: Path, config: TrainingConfig, hyperparameters: dict, eval_metrics: dict,
                        train_results: dict, model_id: str) -> None:
    """Stage the model, JSON files and card in a temporary folder, then move them in; the card comes last."""
    staging = output_dir / ".tmp-final"
    if staging.exists():
        shutil.rmtree(staging)
    model.save_pretrained(staging)
    image_processor(model.config.image_size, model.config.num_channels).save_pretrained(staging)
    (staging / "training_args.json").write_text(json.dumps(hyperparameters, indent=2, default=str))
    (staging / "eval_results.json").write_text(json.dumps({"split": "test", **eval_metrics}, indent=2))
    (staging / "train_results.json").write_text(json.dumps(train_results, indent=2))
    (staging / ".gitignore").write_text("".join(f"{pattern}\n" for pattern in hub.IGNORE_PATTERNS))
    card = cards.render_model_card(
        model_kind=config.model, model_id=model_id, model_config=model.config, config=asdict(config),
        eval_metrics=eval_metrics, train_results=train_results,
    )
    card.save(staging / "README.md")
    names = sorted(p.name for p in staging.iterdir() if p.name != "README.md") + ["README.md"]
    for name in names:
        (staging / name).chmod(0o644)  # safetensors are written 0600 through a temporary file
        os.replace(staging / name, output_dir / name)
    staging.rmdir()
    logger.info(f"Wrote {output_dir} ({', '.join(names)})")
