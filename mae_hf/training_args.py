"""The command line of `train_accelerate.py` and `mae-hf train`: argparse → (`TrainingConfig`, `RunArgs`).

Flag names follow transformers' `*_no_trainer.py` examples; the model-specific ones (`--model`, `--dataset`,
`--preset`, `--mask_ratio`, `--noise_factor`) are this project's. Bad arguments exit with status 2 and a message
before any work.
"""

import argparse
import json
import logging
import os
import re
import shlex
import sys

from . import hub
from .training import CORRUPTIONS, MODELS, ConfigurationError, RunArgs, TrainingConfig, training_function

__all__ = ["build_parser", "parse_args", "parse_config_overrides", "main"]

EXAMPLES = """examples:
  accelerate launch train_accelerate.py --model dae --dataset mnist --output_dir outputs/dae-mnist
  accelerate launch train_accelerate.py --model mae --preset mnist --mask_ratio 0.75 --num_train_epochs 60 \\
      --output_dir outputs/mae-mnist --checkpointing_steps 500 --with_tracking
  accelerate launch train_accelerate.py ... --resume_from_checkpoint latest   # continue after a crash
  python train_accelerate.py ... / mae-hf train ...                        # the same, one process
"""


def _bool_flag(parser, name: str, help: str) -> None:
    parser.add_argument(f"--{name}", action="store_true", help=help)


def _limit(text: str) -> int | None:
    if text.strip().lower() in ("all", "none"):
        return None
    try:
        return int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a number of checkpoints or 'all', got {text!r}") from err


def build_parser(prog: str = "train_accelerate.py") -> argparse.ArgumentParser:
    """The argument parser; every flag documented in `--help`."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train the denoising autoencoder (DAE) or the masked autoencoder (MAE, transformers' "
                    "ViTMAEForPreTraining) with accelerate, on CPU, one GPU or many, and write a Hub-ready folder "
                    "(config.json, model.safetensors, model card README.md, metrics, checkpoints).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = parser.add_argument_group("model and data")
    g.add_argument("--model", choices=MODELS, required=True,
                   help="dae: the study's convolutional denoising autoencoder; mae: ViTMAEForPreTraining.")
    g.add_argument("--dataset", default="mnist",
                   help="Dataset source for mae_hf.load_image_dataset: 'mnist' (default, offline: 5,000 real MNIST "
                        "digits), a Hub id such as ylecun/mnist or uoft-cs/cifar10, a folder of MNIST IDX files, an "
                        "imagefolder, or parquet file(s).")
    g.add_argument("--preset", default=None,
                   help="MAE only: mae_hf.MAE_PRESETS name, 'mnist' (28x28x1, default) or 'cifar10' (32x32x3); must "
                        "match the dataset's images.")
    g.add_argument("--corruption", choices=CORRUPTIONS, default=None,
                   help="mask: random patch masking, loss on the masked patches (the MAE's default); noise: Gaussian "
                        "noise on every pixel, loss on the whole image (the DAE's default). The other pairing trains "
                        "the controls of `mae-hf study`: a ViTMAE with masking off fed noisy images, or the DAE's "
                        "network fed masked images.")
    g.add_argument("--mask_ratio", type=float, default=None,
                   help="--corruption mask only: fraction of patches hidden, in [0, 1) (default 0.75; the MAE's "
                        "preset value).")
    g.add_argument("--mask_ratio_range", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help="--corruption mask only: draw each training batch's mask ratio uniformly from [LOW, HIGH] "
                        "(seeded), so the model works at every ratio in the range; --mask_ratio stays the one it is "
                        "evaluated at.")
    g.add_argument("--noise_factor", type=float, default=None,
                   help="--corruption noise only: std of the Gaussian input noise, >= 0 (default 0.5).")
    g.add_argument("--config_overrides", default=None,
                   help="Model config fields to override, as 'key=value,key=value' or a JSON object, e.g. "
                        "'hidden_size=64,num_hidden_layers=2' (MAE) or '{\"hidden_channels\": [16, 8, 4]}' (DAE).")
    g.add_argument("--max_train_samples", type=int, default=None,
                   help="Use only the first N training images (for quick runs and tests).")
    g.add_argument("--max_eval_samples", type=int, default=None,
                   help="Evaluate on only the first N test images (for quick runs and tests).")

    g = parser.add_argument_group("optimisation (everything that changes the weights)")
    g.add_argument("--num_train_epochs", type=int, default=10, help="Number of epochs (default 10).")
    g.add_argument("--max_train_steps", type=int, default=None,
                   help="Total optimisation steps; overrides --num_train_epochs when given.")
    g.add_argument("--per_device_train_batch_size", type=int, default=64,
                   help="Training batch size per process (default 64); the global batch is this x processes x "
                        "--gradient_accumulation_steps.")
    g.add_argument("--per_device_eval_batch_size", type=int, default=256,
                   help="Evaluation batch size per process (default 256); does not change the metrics.")
    g.add_argument("--gradient_accumulation_steps", type=int, default=1,
                   help="Micro-batches accumulated per optimisation step (default 1).")
    g.add_argument("--learning_rate", type=float, default=1e-3, help="Peak AdamW learning rate, > 0 (default 1e-3).")
    g.add_argument("--weight_decay", type=float, default=None,
                   help="AdamW weight decay on weight matrices/kernels (default: 0.05 for mae, 0 for dae).")
    g.add_argument("--num_warmup_steps", type=int, default=0, help="Linear warm-up steps (default 0).")
    g.add_argument("--lr_scheduler_type", default="cosine",
                   help="transformers scheduler after warm-up: cosine (default), linear, constant, "
                        "constant_with_warmup, polynomial, cosine_with_restarts, ...")
    g.add_argument("--max_grad_norm", type=float, default=1.0, help="Gradient clipping norm (default 1.0).")
    g.add_argument("--seed", type=int, default=42,
                   help="Seed for initialisation, data order and per-sample training corruption (default 42).")
    g.add_argument("--eval_seed", type=int, default=0,
                   help="Seed of the fixed per-sample test corruption (default 0); keep it to compare runs.")

    g = parser.add_argument_group("outputs, checkpoints and tracking")
    g.add_argument("--output_dir", required=True,
                   help="Where the model, card, metrics and checkpoints go. Must be empty or absent unless "
                        "--overwrite_output_dir or --resume_from_checkpoint is given.")
    _bool_flag(g, "overwrite_output_dir", "Start a new run in a non-empty --output_dir (its old checkpoints are deleted).")
    g.add_argument("--checkpointing_steps", default=None,
                   help="Save a checkpoint (output_dir/step_N) every N optimisation steps, or at a comma-separated "
                        "list of steps (e.g. 188,469); checkpoints "
                        "(output_dir/epoch_N) are always saved at epoch ends. 'epoch' = epoch ends only (default).")
    g.add_argument("--checkpoints_total_limit", type=_limit, default=2,
                   help="Keep only the newest N checkpoints (default 2); 'all' keeps every one (learning curves).")
    g.add_argument("--resume_from_checkpoint", default=None,
                   help="'latest' (the newest checkpoint in --output_dir) or a step_N / epoch_N folder: restores "
                        "model, optimizer, scheduler, RNG states and the position inside the epoch. Use the same "
                        "other arguments as the interrupted run.")
    _bool_flag(g, "with_tracking", "Log losses, learning rate and test metrics through accelerate's trackers.")
    g.add_argument("--report_to", default="tensorboard",
                   help="Tracker(s) for --with_tracking: tensorboard (default; logs in output_dir/runs), wandb, "
                        "all, ...")
    g.add_argument("--logging_steps", type=int, default=10, help="Log the training loss every N steps (default 10).")
    g.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), default=None,
                   help="Mixed precision (default: what `accelerate config` / `accelerate launch` set, else no). "
                        "On CPU keep 'no': bf16 autocast is ~10x slower on common CPUs.")
    _bool_flag(g, "cpu", "Train on the CPU even if a GPU is available.")

    g = parser.add_argument_group("Hugging Face Hub")
    _bool_flag(g, "push_to_hub", "Create the repo and upload the finished folder (without checkpoints). Checked "
                                 "before training: without a token or network the run fails at once.")
    g.add_argument("--hub_model_id", default=None,
                   help="Repo id, 'user/name' or 'name' (default: the --output_dir folder name); also the id the "
                        "model card's code loads.")
    g.add_argument("--hub_token", default=None, help="Hub token (default: $HF_TOKEN or the `hf auth login` token).")
    _bool_flag(g, "hub_private_repo", "Create the Hub repo as private.")
    return parser


def parse_config_overrides(text: str | None) -> dict:
    """`'a=1,b=[2,3],c=gelu'` or `'{"a": 1}'` → dict (values parsed as JSON where they are JSON)."""
    if not text:
        return {}
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigurationError(f"--config_overrides is not valid JSON: {err}") from err
        if not isinstance(value, dict):
            raise ConfigurationError("--config_overrides as JSON must be an object.")
        return value
    overrides = {}
    for item in re.split(r",(?![^\[]*\])", text):  # commas outside [...]
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(f"--config_overrides item {item!r} is not key=value.")
        try:
            overrides[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key.strip()] = raw.strip()
    return overrides


def _default_mixed_precision() -> str:
    return os.environ.get("ACCELERATE_MIXED_PRECISION", "no")


def _command_line(prog: str, argv: list[str]) -> str:
    """The command as a user would retype it (recorded in the model card)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1:
        launcher = ["accelerate", "launch", "--num_processes", str(world_size)]
    elif "ACCELERATE_MIXED_PRECISION" in os.environ:  # set by `accelerate launch`
        launcher = ["accelerate", "launch"]
    else:
        launcher = ["python"] if prog.endswith(".py") else []
    return hub.redact(shlex.join([*launcher, *prog.split(), *argv]))


def parse_args(argv: list[str] | None = None, prog: str = "train_accelerate.py") -> tuple[TrainingConfig, RunArgs]:
    """Parse and validate; on bad arguments print the usage and a message and exit with status 2."""
    parser = build_parser(prog)
    ns = parser.parse_args(argv)
    try:
        config = TrainingConfig(
            model=ns.model, dataset=ns.dataset, corruption=ns.corruption, preset=ns.preset, mask_ratio=ns.mask_ratio,
            mask_ratio_range=ns.mask_ratio_range,
            noise_factor=ns.noise_factor, config_overrides=parse_config_overrides(ns.config_overrides),
            num_train_epochs=ns.num_train_epochs, max_train_steps=ns.max_train_steps,
            per_device_train_batch_size=ns.per_device_train_batch_size,
            per_device_eval_batch_size=ns.per_device_eval_batch_size,
            gradient_accumulation_steps=ns.gradient_accumulation_steps, learning_rate=ns.learning_rate,
            weight_decay=ns.weight_decay, num_warmup_steps=ns.num_warmup_steps,
            lr_scheduler_type=ns.lr_scheduler_type, max_grad_norm=ns.max_grad_norm, seed=ns.seed,
            eval_seed=ns.eval_seed, max_train_samples=ns.max_train_samples, max_eval_samples=ns.max_eval_samples,
        )
        args = RunArgs(
            output_dir=ns.output_dir, overwrite_output_dir=ns.overwrite_output_dir,
            checkpointing_steps=ns.checkpointing_steps, checkpoints_total_limit=ns.checkpoints_total_limit,
            resume_from_checkpoint=ns.resume_from_checkpoint, with_tracking=ns.with_tracking,
            report_to=ns.report_to, logging_steps=ns.logging_steps,
            mixed_precision=ns.mixed_precision or _default_mixed_precision(), cpu=ns.cpu,
            push_to_hub=ns.push_to_hub, hub_model_id=ns.hub_model_id, hub_token=ns.hub_token,
            hub_private_repo=ns.hub_private_repo,
            command=_command_line(prog, sys.argv[1:] if argv is None else argv),
        )
        args.validate()
    except ConfigurationError as err:
        parser.error(str(err))
    return config, args


def main(argv: list[str] | None = None, prog: str = "train_accelerate.py") -> int:
    """Parse, train, write the folder; exit status 2 for bad arguments or inputs found before training."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("accelerate", "transformers", "datasets", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config, args = parse_args(argv, prog)
    try:
        training_function(config, args)
    except ConfigurationError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    return 0
