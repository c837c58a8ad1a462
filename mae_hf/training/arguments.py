"""The command line of `train_accelerate.py` and `mae-hf train`: `HfArgumentParser` over `TrainingConfig` and
`RunArgs`, so every flag is a dataclass field (its help is the field's metadata). Bad arguments exit with status 2
and a message before any work.
"""

import logging
import os
import shlex
import sys

from transformers import HfArgumentParser

from .. import hub
from .config import ConfigurationError, NonFiniteLossError, OutputWriteError, RunArgs, TrainingConfig
from .loop import training_function

__all__ = ["build_parser", "parse_args", "main"]

EXAMPLES = """examples:
  accelerate launch train_accelerate.py --model dae --dataset mnist --output_dir outputs/dae-mnist
  accelerate launch train_accelerate.py --model mae --preset mnist --mask_ratio 0.75 --num_train_epochs 20 \\
      --output_dir outputs/mae-mnist --checkpointing_steps 500 --with_tracking
  accelerate launch train_accelerate.py ... --resume_from_checkpoint latest   # continue after a crash
  python train_accelerate.py ... / mae-hf train ...                        # the same, one process
"""


def build_parser(prog: str = "train_accelerate.py") -> HfArgumentParser:
    """The argument parser: one flag per field of `TrainingConfig` and `RunArgs`."""
    import argparse

    return HfArgumentParser(
        (TrainingConfig, RunArgs),
        prog=prog,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train the denoising autoencoder (DAE) or the masked autoencoder (MAE, transformers' "
        "ViTMAEForPreTraining) with accelerate, on CPU, one GPU or many, and write a Hub-ready folder "
        "(config.json, model.safetensors, image processor, model card README.md, metrics, checkpoints).",
    )


def command_line(prog: str, argv: list[str]) -> str:
    """The command as a user would retype it (recorded in the model card), every Hub token redacted."""
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
    argv = sys.argv[1:] if argv is None else argv
    try:
        config, args = parser.parse_args_into_dataclasses(argv)
        args.validate()
    except ConfigurationError as err:
        parser.error(str(err))
    args.command = hub.redact(args.command) if args.command else command_line(prog, argv)
    return config, args


def main(argv: list[str] | None = None, prog: str = "train_accelerate.py") -> int:
    """Parse, train, write the folder. Exit status 2: bad arguments or inputs, found before training (or a damaged
    checkpoint to resume from); 3: the loss diverged (the message names the step); 4: a checkpoint or the final
    folder could not be written (a full disk; the message names the folder and what to do). Each is one line on
    stderr, without a traceback."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("accelerate", "transformers", "datasets", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config, args = parse_args(argv, prog)
    try:
        training_function(config, args)
    except ConfigurationError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except NonFiniteLossError as err:
        print(f"{prog}: training stopped: {err}", file=sys.stderr)
        return 3
    except OutputWriteError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 4
    return 0
