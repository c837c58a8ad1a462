"""Training both autoencoders: one loop (`training_function`), configured by two dataclasses.

- `config`: `TrainingConfig` (hyperparameters) and `RunArgs` (infrastructure), with their validation.
- `arguments`: the command line (`HfArgumentParser` over the two), `train_accelerate.py` and `mae-hf train`.
- `data`: splits decoded once, batches that carry each sample's index.
- `models`: the model and optimiser a config describes.
- `checkpointing`: checkpoints written whole, checked before a resume, pruned.
- `loop`: `training_function`, as a short sequence of named steps.

Evaluation (`evaluate`) is `mae_hf.evaluation`'s, re-exported here because the loop's metrics are its.
"""

from ..evaluation import evaluate, evaluate_per_sample
from .checkpointing import check_checkpoint, checkpoint_model, find_checkpoints, images_seen, trainer_state
from .config import (
    MODELS,
    ConfigOverrides,
    ConfigurationError,
    NonFiniteLossError,
    OutputWriteError,
    RunArgs,
    TrainingConfig,
)
from .data import ImageTensorDataset, collate_batch, evaluation_dataloader, image_shape
from .loop import batch_mask_ratio, training_function
from .models import build_model, build_optimizer, mae_preset_for

__all__ = [
    "MODELS",
    "ConfigOverrides",
    "ConfigurationError",
    "NonFiniteLossError",
    "OutputWriteError",
    "RunArgs",
    "TrainingConfig",
    "ImageTensorDataset",
    "collate_batch",
    "evaluation_dataloader",
    "image_shape",
    "build_model",
    "mae_preset_for",
    "build_optimizer",
    "batch_mask_ratio",
    "check_checkpoint",
    "checkpoint_model",
    "images_seen",
    "trainer_state",
    "find_checkpoints",
    "training_function",
    "evaluate",
    "evaluate_per_sample",
]
