"""What a training run is: hyperparameters (`TrainingConfig`, everything that changes the weights) and
infrastructure (`RunArgs`). Both are dataclasses whose fields are the command-line flags (`HfArgumentParser`, see
`mae_hf.training.arguments`); every bad value raises `ConfigurationError` naming the flag and the fix.
"""

import json
import math
import re
import shlex
import sys
from argparse import ArgumentTypeError
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from transformers import SchedulerType, ViTMAEConfig

from .. import hub
from ..configuration_dae import DAEConfig
from ..evaluation import CORRUPTION_KINDS, EVAL_SEED
from ..mae import MAE_PRESETS
from ..profiles import PROFILES

__all__ = [
    "MODELS",
    "ConfigurationError",
    "NonFiniteLossError",
    "OutputWriteError",
    "ConfigOverrides",
    "TrainingConfig",
    "RunArgs",
    "TRAINER_STATE",
]

MODELS = ("dae", "mae")
TRAINER_STATE = "trainer_state.json"


class ConfigurationError(ValueError, ArgumentTypeError):
    """Bad arguments or inputs, found before any training work (the script exits with status 2). Also an
    `argparse.ArgumentTypeError`, so a flag's parser shows this message as it is."""


class NonFiniteLossError(RuntimeError):
    """The loss or the gradient norm became NaN/inf; training stopped before that step changed the weights (the
    script exits with status 3). The message names the step and the latest checkpoint written, or says none was."""


class OutputWriteError(RuntimeError):
    """A checkpoint or the final folder could not be written (a full disk, a failed write); the half-written folder
    is removed and earlier checkpoints are untouched (the script exits with status 4). The message names the output
    folder and what to do."""


class ConfigOverrides(dict):
    """
    Named values (model config fields to override, a value per architecture): a dict, or its command-line form
    `'key=value,key=value'` (values parsed as JSON where they are JSON, commas inside `[...]` kept) or a JSON object.
    A bad string raises `ConfigurationError`; on the command line argparse names the flag before the message.
    """

    def __init__(self, value=(), **kwargs):
        super().__init__(self.parse(value) if isinstance(value, str) else value, **kwargs)

    @staticmethod
    def parse(text: str) -> dict:
        text = text.strip()
        if not text:
            return {}
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as err:
                raise ConfigurationError(f"{text!r} is not valid JSON: {err}") from err
            if not isinstance(value, dict):
                raise ConfigurationError(f"{text!r}: a JSON value here must be an object.")
            return value
        overrides = {}
        for item in re.split(r",(?![^\[]*\])", text):  # commas outside [...]
            key, sep, raw = item.partition("=")
            if not sep or not key.strip():
                raise ConfigurationError(f"{item!r} is not key=value (e.g. hidden_size=64,num_hidden_layers=2).")
            try:
                overrides[key.strip()] = json.loads(raw)
            except json.JSONDecodeError:
                overrides[key.strip()] = raw.strip()
        return overrides


def _help(text: str, **extra) -> dict:
    return {"help": text, **extra}


@dataclass
class TrainingConfig:
    """
    Everything that determines the trained weights (saved as `training_args.json` next to the model).

    `None` means "the model's default": `corruption` is `"mask"` for the MAE and `"noise"` for the DAE (the other
    pairing gives the two control cells of `mae-hf study`); `preset` is `"mnist"` for the MAE; `mask_ratio` the
    preset's (0.75); `noise_factor` 0.5; `weight_decay` 0.05 for the MAE (the MAE paper's) and 0 for the DAE (the
    study's Adam). `config_overrides` sets any field of `ViTMAEConfig` / `DAEConfig`.
    """

    _argument_group_name = "model, data and optimisation (everything that changes the weights)"

    model: Literal["dae", "mae"] = field(
        metadata=_help("dae: the study's convolutional denoising autoencoder; mae: transformers' ViTMAEForPreTraining.")
    )
    dataset: str = field(
        default="mnist",
        metadata=_help(
            "Dataset source for mae_hf.load_image_dataset: 'mnist' (offline, shipped with the package), a Hub id such as "
            "ylecun/mnist or uoft-cs/cifar10, a folder of MNIST IDX files, an imagefolder, or parquet file(s)."
        ),
    )
    dataset_profile: str | None = field(
        default=None,
        metadata=_help(
            "The dataset profile the model folder names in its config (mae_hf.profiles: digits, clothing, rgb): how "
            "the app prepares a picture for it. Default: the profile of the dataset (MNIST: digits; Fashion-MNIST: "
            "clothing; colour images: rgb); a folder of other grayscale images names none unless given."
        ),
    )
    corruption: Literal["mask", "noise"] | None = field(
        default=None,
        metadata=_help(
            "mask: random patch masking, loss on the masked patches (the MAE's default); noise: Gaussian noise on every "
            "pixel, loss on the whole image (the DAE's default). The other pairing trains the controls of `mae-hf study`."
        ),
    )
    preset: str | None = field(
        default=None,
        metadata=_help("MAE only: mae_hf.MAE_PRESETS name, 'mnist' (28x28x1, default) or 'cifar10' (32x32x3)."),
    )
    mask_ratio: float | None = field(
        default=None,
        metadata=_help("--corruption mask only: fraction of patches hidden, in [0, 1) (default 0.75, the preset's)."),
    )
    mask_ratio_range: list[float] | None = field(
        default=None,
        metadata=_help(
            "--corruption mask only: LOW HIGH; each training batch's mask ratio is drawn uniformly from [LOW, HIGH] "
            "(seeded), so the model works at every ratio in the range; --mask_ratio stays the one it is evaluated at.",
            metavar="RATIO",
        ),
    )
    noise_factor: float | None = field(
        default=None, metadata=_help("--corruption noise only: std of the Gaussian input noise, >= 0 (default 0.5).")
    )
    config_overrides: ConfigOverrides = field(
        default_factory=ConfigOverrides,
        metadata=_help(
            "Model config fields to override, as 'key=value,key=value' or a JSON object, e.g. "
            "'hidden_size=64,num_hidden_layers=2' (MAE) or '{\"hidden_channels\": [16, 8, 4]}' (DAE)."
        ),
    )
    num_train_epochs: int = field(default=10, metadata=_help("Number of training epochs (default 10)."))
    max_train_steps: int | None = field(
        default=None, metadata=_help("Total optimisation steps; overrides --num_train_epochs when given.")
    )
    per_device_train_batch_size: int = field(
        default=64,
        metadata=_help(
            "Training batch size per process (default 64); the global batch is this x processes x "
            "--gradient_accumulation_steps."
        ),
    )
    per_device_eval_batch_size: int = field(
        default=256, metadata=_help("Evaluation batch size per process (default 256); does not change the metrics.")
    )
    gradient_accumulation_steps: int = field(
        default=1, metadata=_help("Micro-batches accumulated per optimisation step (default 1).")
    )
    learning_rate: float = field(default=1e-3, metadata=_help("Peak AdamW learning rate, > 0 (default 1e-3)."))
    weight_decay: float | None = field(
        default=None,
        metadata=_help("AdamW weight decay on weight matrices and kernels (default: 0.05 for mae, 0 for dae)."),
    )
    num_warmup_steps: int = field(default=0, metadata=_help("Linear learning-rate warm-up steps (default 0)."))
    lr_scheduler_type: str = field(
        default="cosine",
        metadata=_help(
            "transformers scheduler after the warm-up: cosine (default), linear, constant, constant_with_warmup, "
            "polynomial, cosine_with_restarts, ..."
        ),
    )
    max_grad_norm: float = field(default=1.0, metadata=_help("Gradient clipping norm (default 1.0)."))
    seed: int = field(
        default=42,
        metadata=_help("Seed of initialisation, data order and per-sample training corruption (default 42)."),
    )
    eval_seed: int = field(
        default=EVAL_SEED,
        metadata=_help("Seed of the fixed per-sample test corruption (default 0); keep it to compare runs."),
    )
    max_train_samples: int | None = field(
        default=None, metadata=_help("Train on the first N training images only (quick runs and tests).")
    )
    max_eval_samples: int | None = field(
        default=None,
        metadata=_help("Evaluate on the first N validation and N test images only (quick runs and tests)."),
    )
    validation_size: int | None = field(
        default=None,
        metadata=_help(
            "Training images held out as the validation split, where every epoch is evaluated (default: one in six, "
            "at most 10,000, stratified by class: mae_hf.validation). They are trained on too (no label is read); "
            "the test split is scored once, at the end."
        ),
    )

    def __post_init__(self):
        self.config_overrides = ConfigOverrides(self.config_overrides or {})
        if self.corruption is None and self.model in MODELS:
            self.corruption = {"mae": "mask", "dae": "noise"}[self.model]
        if self.model == "mae" and self.preset is None:
            self.preset = "mnist"
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
        if self.dataset_profile is not None and self.dataset_profile not in PROFILES:
            fail(
                f"Unknown --dataset_profile {self.dataset_profile!r}; choose one of {list(PROFILES)} (mae_hf.profiles)."
            )
        if self.corruption not in CORRUPTION_KINDS:
            fail(f"Unknown corruption {self.corruption!r}; choose one of {list(CORRUPTION_KINDS)} (--corruption).")
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
                fail(
                    "--mask_ratio applies to --corruption mask only; this run corrupts with Gaussian noise "
                    "(--noise_factor)."
                )
            if self.noise_factor is not None and self.noise_factor < 0:
                fail(f"--noise_factor must be >= 0, got {self.noise_factor}.")
        if not self.learning_rate > 0 or not math.isfinite(self.learning_rate):
            fail(f"--learning_rate must be a positive number, got {self.learning_rate}.")
        if self.weight_decay < 0:
            fail(f"--weight_decay must be >= 0, got {self.weight_decay}.")
        if not self.max_grad_norm > 0:
            fail(f"--max_grad_norm must be > 0, got {self.max_grad_norm}.")
        for name in (
            "num_train_epochs",
            "per_device_train_batch_size",
            "per_device_eval_batch_size",
            "gradient_accumulation_steps",
        ):
            if int(getattr(self, name)) < 1:
                fail(f"--{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("max_train_steps", "max_train_samples", "max_eval_samples", "validation_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                fail(f"--{name} must be >= 1 when given, got {value}.")
        if self.num_warmup_steps < 0:
            fail(f"--num_warmup_steps must be >= 0, got {self.num_warmup_steps}.")
        schedulers = [s.value for s in SchedulerType if s.value != "reduce_lr_on_plateau"]
        if self.lr_scheduler_type not in schedulers:
            fail(f"Unknown --lr_scheduler_type {self.lr_scheduler_type!r}; choose one of {schedulers}.")
        reserved = {"mask_ratio": "--mask_ratio", "noise_factor": "--noise_factor", "corruption": "--corruption"}
        for key in self.config_overrides:
            if key in reserved:
                fail(f"Set {key} with {reserved[key]}, not in --config_overrides.")
        config = ViTMAEConfig() if self.model == "mae" else DAEConfig()
        valid = {k for k in config.to_dict() if not k.startswith("_")} - {
            "transformers_version",
            "model_type",
            "architectures",
        }
        unknown = sorted(set(self.config_overrides) - valid)
        if unknown:
            fail(
                f"--config_overrides has keys {unknown} that are not fields of the {self.model.upper()} config; "
                f"valid keys include {sorted(valid)[:12]}..."
            )


@dataclass
class RunArgs:
    """
    Infrastructure: where outputs go, checkpointing, tracking, precision, the Hub. None of it changes the weights.

    `checkpointing_steps`: a checkpoint every N optimizer steps, or at the listed steps (`"188,469"` or a list of
    ints; epoch ends are always saved); `None` or `"epoch"`: epoch ends only. `checkpoints_total_limit`: keep the
    newest N; `None` or 0 keeps every one (learning curves, the study's budgets). `command`: the command line
    recorded in the model card (set by the script; the token is redacted wherever it is recorded).
    """

    _argument_group_name = "outputs, checkpoints, tracking and the Hub"

    output_dir: str = field(
        metadata=_help(
            "Where the model, card, metrics and checkpoints go. Must be empty or absent unless --overwrite_output_dir "
            "or --resume_from_checkpoint is given."
        )
    )
    overwrite_output_dir: bool = field(
        default=False, metadata=_help("Start a new run in a non-empty --output_dir (its old checkpoints are deleted).")
    )
    checkpointing_steps: str | None = field(
        default=None,
        metadata=_help(
            "Save a checkpoint (output_dir/step_N) every N optimisation steps, or at a comma-separated list of steps "
            "(e.g. 188,469); checkpoints output_dir/epoch_N are always saved at epoch ends. 'epoch' = epoch ends only "
            "(default)."
        ),
    )
    checkpoints_total_limit: int | None = field(
        default=2,
        metadata=_help("Keep only the newest N checkpoints (default 2); 0 keeps every one (learning curves)."),
    )
    resume_from_checkpoint: str | None = field(
        default=None,
        metadata=_help(
            "'latest' (the newest complete checkpoint in --output_dir) or a step_N / epoch_N folder: restores model, "
            "optimizer, scheduler, RNG states and the position inside the epoch. Use the same other arguments."
        ),
    )
    stop_after_epochs: int | None = field(
        default=None,
        metadata=_help(
            "Stop after this many epochs of the run's schedule (the learning rate follows --num_train_epochs), its "
            "epoch checkpoint saved and no final folder written; the same command with --resume_from_checkpoint "
            "latest goes on. For a long run spread over several sessions."
        ),
    )
    with_tracking: bool = field(
        default=False, metadata=_help("Log losses, learning rate and test metrics through accelerate's trackers.")
    )
    report_to: str = field(
        default="tensorboard",
        metadata=_help(
            "Tracker(s) for --with_tracking: tensorboard (default; logs in output_dir/runs), wandb, all, ..."
        ),
    )
    logging_steps: int = field(default=10, metadata=_help("Log the training loss every N steps (default 10)."))
    mixed_precision: Literal["no", "fp16", "bf16"] | None = field(
        default=None,
        metadata=_help(
            "Mixed precision (default: what `accelerate config` / `accelerate launch` set, else no). On CPU keep 'no': "
            "bf16 autocast is about 10x slower on common CPUs."
        ),
    )
    cpu: bool = field(default=False, metadata=_help("Train on the CPU even if a GPU is available."))
    push_to_hub: bool = field(
        default=False,
        metadata=_help(
            "Create the repo and upload the finished folder (without checkpoints). Checked before training: without a "
            "token or network the run fails at once."
        ),
    )
    hub_model_id: str | None = field(
        default=None,
        metadata=_help(
            "Repo id, 'user/name' or 'name' (default: the --output_dir folder name); also the id the card's code loads."
        ),
    )
    hub_token: str | None = field(
        default=None,
        repr=False,
        metadata=_help("Hub token (default: $HF_TOKEN or the `hf auth login` token). Never written to any file."),
    )
    hub_private_repo: bool = field(default=False, metadata=_help("Create the Hub repo as private."))
    command: str | None = field(
        default=None,
        metadata=_help("The command line recorded in the model card (default: the one that ran, token redacted)."),
    )

    def __post_init__(self):
        if self.mixed_precision is None:
            import os

            self.mixed_precision = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")

    def validate(self) -> None:
        steps = self.checkpointing_steps
        if isinstance(steps, str) and steps != "epoch":
            parts = [p.strip() for p in steps.split(",")]
            if not all(p.isdigit() for p in parts):
                raise ConfigurationError(
                    "--checkpointing_steps must be a positive integer (every N steps), a comma-separated list of "
                    f"steps (e.g. 188,469) or 'epoch', got {steps!r}."
                )
            steps = int(parts[0]) if len(parts) == 1 else [int(p) for p in parts]
        if isinstance(steps, (list, tuple)):
            steps = sorted({int(p) for p in steps})
        values = steps if isinstance(steps, list) else [steps] if isinstance(steps, int) else []
        if any(v < 1 for v in values):
            raise ConfigurationError(f"--checkpointing_steps must be >= 1, got {self.checkpointing_steps}.")
        self.checkpointing_steps = None if steps == "epoch" else steps
        if self.checkpoints_total_limit is not None and self.checkpoints_total_limit < 0:
            raise ConfigurationError(f"--checkpoints_total_limit must be >= 0, got {self.checkpoints_total_limit}.")
        if self.checkpoints_total_limit == 0:
            self.checkpoints_total_limit = None
        if self.stop_after_epochs is not None and self.stop_after_epochs < 1:
            raise ConfigurationError(f"--stop_after_epochs must be >= 1, got {self.stop_after_epochs}.")
        if self.logging_steps < 1:
            raise ConfigurationError(f"--logging_steps must be >= 1, got {self.logging_steps}.")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ConfigurationError(f"--mixed_precision must be one of no, fp16, bf16; got {self.mixed_precision!r}.")
        if self.with_tracking and self.report_to in ("tensorboard", "all"):
            import importlib.util

            if importlib.util.find_spec("tensorboard") is None and importlib.util.find_spec("tensorboardX") is None:
                raise ConfigurationError(
                    "--with_tracking logs to TensorBoard, which is not installed: `pip install tensorboard` (or "
                    "mae_hf[tracking]), or choose another tracker with --report_to."
                )
        resume = self.resume_from_checkpoint
        if resume not in (None, "", "latest") and not (Path(resume) / TRAINER_STATE).is_file():
            raise ConfigurationError(
                f"--resume_from_checkpoint {resume!r} is not a checkpoint folder (no {TRAINER_STATE}); pass 'latest' "
                "or a step_N / epoch_N folder written by this script."
            )

    def to_dict(self) -> dict:
        """The fields as recorded in `training_args.json` and the trackers: the token as `hub.REDACTED`, the
        command line with every token redacted (as transformers' `TrainingArguments.to_dict`)."""
        d = asdict(self)
        if d["hub_token"]:
            d["hub_token"] = hub.REDACTED
        d["command"] = self.command or shlex.join(sys.argv)
        return hub.redact_values(d, hub.known_tokens(self.hub_token))
