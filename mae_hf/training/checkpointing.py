"""Checkpoints: written whole or not at all, found, checked before they are resumed from, and pruned.

A checkpoint is accelerate's `save_state` folder (`model.safetensors`, `optimizer.bin`, `scheduler.bin`,
`random_states_{process}.pkl`) plus our `trainer_state.json` (steps, position in the epoch, log history), saved
into `.tmp-NAME` and renamed, so a folder named `step_N` / `epoch_N` is complete. A write that fails (a full disk)
removes `.tmp-NAME` and raises `OutputWriteError`; a `.tmp-*` folder left by a killed run is removed at the next
start (`prepare_output_dir`). A file damaged later (a copy cut short) is found by `check_checkpoint` before `load_state` would fail with a bare `OSError` or
silently skip the RNG state: `resolve_resume` names the file and falls back to the previous complete checkpoint
for `latest`, or refuses an explicitly named one.

Every torch file is read with `weights_only=True`: accelerate's RNG state (`random_states_N.pkl`) is a pickle of the
Python, numpy and torch generators, so it is allowed exactly the numpy globals a genuine one holds
(`RNG_STATE_GLOBALS`). A file that needs anything else (a crafted pickle that would run code) is refused as damaged
or unsafe before accelerate's `load_state` sees the folder.
"""

import copy
import errno
import json
import logging
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator

from .config import TRAINER_STATE, ConfigurationError, OutputWriteError, RunArgs

logger = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINT_PREFIXES",
    "find_checkpoints",
    "check_checkpoint",
    "checkpoint_model",
    "images_seen",
    "save_checkpoint",
    "any_process",
    "write_failure",
    "resolve_resume",
    "prepare_output_dir",
]

CHECKPOINT_PREFIXES = ("step_", "epoch_")
# What a genuine `random_states_N.pkl` may rebuild besides tensors and plain Python values: numpy's legacy generator
# state, a uint32 array. `np.zeros(0).__reduce__()[0]` is numpy's array rebuilder (numpy._core.multiarray._reconstruct
# in numpy 2, numpy.core.multiarray._reconstruct in numpy 1); `type(np.dtype(np.uint32))` is numpy.dtypes.UInt32DType.
RNG_STATE_GLOBALS = [np.zeros(0).__reduce__()[0], np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def find_checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Checkpoints (`step_N`/`epoch_N` with a trainer state) in `output_dir` as (completed steps, path), oldest
    first."""
    found = []
    root = Path(output_dir)
    if not root.is_dir():
        return found
    for path in root.iterdir():
        state = path / TRAINER_STATE
        if path.is_dir() and path.name.startswith(CHECKPOINT_PREFIXES) and state.is_file():
            try:
                found.append((json.loads(state.read_text())["completed_steps"], path))
            except (OSError, ValueError, KeyError):
                found.append((-1, path))  # unreadable state: sorted first, refused by check_checkpoint
    return sorted(found)


def check_checkpoint(path: str | os.PathLike, num_processes: int = 1) -> str | None:
    """
    What is wrong with a checkpoint folder, or None when every file of it loads: the trainer state, the model
    weights, the optimizer and scheduler states and one RNG state per process. Pickled files are read with
    `weights_only=True` (plus `RNG_STATE_GLOBALS`), so checking a crafted file never runs its code.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    try:
        state = json.loads((path / TRAINER_STATE).read_text())
        int(state["completed_steps"])
    except (OSError, ValueError, KeyError) as err:
        return f"{TRAINER_STATE} is unreadable ({type(err).__name__})"
    weights = sorted(path.glob("model*.safetensors")) or sorted(path.glob("pytorch_model*.bin"))
    if not weights:
        return "it holds no model weights (model.safetensors)"
    needed = [
        *weights,
        path / "optimizer.bin",
        path / "scheduler.bin",
        *(path / f"random_states_{i}.pkl" for i in range(num_processes)),
    ]
    for file in needed:
        if not file.is_file() or file.stat().st_size == 0:
            return f"{file.name} is missing or empty"
        try:
            if file.suffix == ".safetensors":
                load_file(file)
            else:
                with torch.serialization.safe_globals(RNG_STATE_GLOBALS):
                    torch.load(file, map_location="cpu", weights_only=True)
        except (SafetensorError, OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError) as err:
            what = "damaged or truncated" if file.suffix == ".safetensors" else "damaged or unsafe to load"
            return f"{file.name} is {what} ({type(err).__name__})"
    return None


def any_process(accelerator: Accelerator, flag: bool) -> bool:
    """Whether `flag` is true on any process (a collective: every process calls it), so that all of them raise
    together instead of waiting for one that failed."""
    flags = accelerator.reduce(torch.tensor(float(flag), device=accelerator.device), reduction="sum")
    return bool(flags.item() > 0)


def write_failure(err: BaseException, what: str, output_dir: Path) -> OutputWriteError:
    """
    The one-line error for a write into `output_dir` that failed with `err` (`what`: "checkpoint step_N", "the final
    model"): whether the disk is full, that nothing half-written is left, the newest checkpoint that is, and what to
    do. The caller has removed its temporary folder.
    """
    detail = f"{type(err).__name__}: {err}".replace("\n", " ")
    full = getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or any(
        sign in str(err) for sign in ("No space left", "StorageFull", "Disk quota exceeded")
    )
    cause = f"the disk is full ({detail})" if full else f"the write failed ({detail})"
    checkpoints = find_checkpoints(output_dir)
    if checkpoints:
        latest = checkpoints[-1][1]
        kept = (
            f"Nothing half-written is left and the earlier checkpoints are intact (the newest is {latest}). Free some "
            "space and run the same command with --resume_from_checkpoint latest, or pass another --output_dir on a "
            f"disk with room and --resume_from_checkpoint {latest}."
        )
    else:
        kept = (
            "Nothing half-written is left. No checkpoint was written before it: free some space, or pass another "
            "--output_dir on a disk with room, and start the run again."
        )
    return OutputWriteError(f"Could not write {what} into {output_dir}: {cause}. {kept}")


def save_checkpoint(accelerator: Accelerator, output_dir: Path, name: str, state: dict, limit: int | None) -> None:
    """
    `save_state` into a temporary folder, then rename: a checkpoint folder exists only once complete. Keeps the
    newest `limit` checkpoints (all when None).

    Raises:
        OutputWriteError: on every process when the write failed on any (a full disk); the temporary folder is
            removed and the earlier checkpoints are untouched.
    """
    from safetensors import SafetensorError

    final, tmp = output_dir / name, output_dir / f".tmp-{name}"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    failure = None
    try:
        accelerator.save_state(str(tmp))
        if accelerator.is_main_process:
            (tmp / TRAINER_STATE).write_text(json.dumps(state, indent=2))
    except (OSError, RuntimeError, SafetensorError) as err:  # torch.save reports a failed write as RuntimeError
        failure = err
    if any_process(accelerator, failure is not None):
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        accelerator.wait_for_everyone()
        err = failure or OSError(f"the write failed on another process (see its log); {tmp} was removed")
        raise write_failure(err, f"checkpoint {name}", output_dir) from failure
    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        checkpoints = find_checkpoints(output_dir)
        for _, old in checkpoints[: max(0, len(checkpoints) - limit)] if limit else []:
            shutil.rmtree(old)
        logger.info("Saved checkpoint %s", final)
    accelerator.wait_for_everyone()


def resolve_resume(args: RunArgs, output_dir: Path, num_processes: int = 1) -> Path | None:
    """
    The checkpoint to resume from, checked: for `latest` the newest complete one (a damaged newer one is named in a
    warning and skipped); an explicitly named damaged one raises `ConfigurationError` naming the file and what to
    do instead.
    """
    if not args.resume_from_checkpoint:
        return None
    if args.resume_from_checkpoint != "latest":
        path = Path(args.resume_from_checkpoint)
        problem = check_checkpoint(path, num_processes)
        if problem:
            good = [p for _, p in find_checkpoints(path.parent) if p != path and not check_checkpoint(p, num_processes)]
            hint = (
                f"resume from {good[-1]} (the newest complete one), or pass 'latest'"
                if good
                else "start the run again without --resume_from_checkpoint"
            )
            raise ConfigurationError(f"Cannot resume from {path}: {problem}. Delete that checkpoint and {hint}.")
        return path
    checkpoints = find_checkpoints(output_dir)
    for _, path in reversed(checkpoints):
        problem = check_checkpoint(path, num_processes)
        if problem is None:
            return path
        logger.warning(
            "Checkpoint %s is damaged: %s. Skipping it; resuming from the previous complete checkpoint "
            "(delete it to silence this warning).",
            path,
            problem,
        )
    if checkpoints:
        raise ConfigurationError(
            f"--resume_from_checkpoint latest: every checkpoint in {output_dir} is damaged (see the warnings); start "
            "the run again with --overwrite_output_dir."
        )
    logger.warning("--resume_from_checkpoint latest: no checkpoint in %s; starting from scratch.", output_dir)
    return None


def prepare_output_dir(args: RunArgs, output_dir: Path, resuming: bool, is_main: bool) -> None:
    """Remove the `.tmp-*` folders an interrupted write left (one log line); refuse to mix a new run into an old
    folder unless asked; with --overwrite_output_dir drop old checkpoints."""
    existing = list(output_dir.iterdir()) if output_dir.is_dir() else []
    stale = sorted(p for p in existing if p.is_dir() and p.name.startswith(".tmp-"))
    existing = [p for p in existing if p not in stale]
    if existing and not resuming and not args.overwrite_output_dir:
        raise ConfigurationError(
            f"--output_dir {str(output_dir)!r} already exists and is not empty; pass --overwrite_output_dir to start "
            "a new run there, or --resume_from_checkpoint latest to continue the run it holds."
        )
    if is_main and stale:
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)
        logger.info(
            "Removed %s in %s: half-written by an earlier run that stopped while writing.",
            ", ".join(p.name for p in stale),
            output_dir,
        )
    if is_main and args.overwrite_output_dir and not resuming:
        for path in existing:
            if path.is_dir() and path.name.startswith(CHECKPOINT_PREFIXES):
                shutil.rmtree(path)


def checkpoint_model(run_dir: str | os.PathLike, checkpoint: str | os.PathLike, model=None):
    """
    The model of a run with the weights of one of its checkpoints, in eval mode: for learning curves and training
    budgets. The architecture is the finished run's (`run_dir`'s config.json), or `model`'s (e.g. `build_model` of
    the run's config) for a run that is still going and has written only checkpoints.

    Raises:
        ConfigurationError: the run is not finished (no config.json) and no `model` is given, or the checkpoint is
            damaged.
    """
    from safetensors.torch import load_file

    from ..loading import load_dae, load_mae

    run_dir, checkpoint = Path(run_dir), Path(checkpoint)
    if model is None:
        try:
            kind = json.loads((run_dir / "config.json").read_text())["model_type"]
        except (OSError, ValueError, KeyError) as err:
            raise ConfigurationError(
                f"{run_dir} holds no finished model (config.json); finish or resume the run."
            ) from err
        model = (load_mae if kind == "vit_mae" else load_dae)(str(run_dir))
    else:
        model = copy.deepcopy(model)
    problem = check_checkpoint(checkpoint)
    if problem:
        raise ConfigurationError(f"Checkpoint {checkpoint} cannot be used: {problem}.")
    model.load_state_dict(load_file(checkpoint / "model.safetensors"))
    return model.eval()


def trainer_state(checkpoint: str | os.PathLike) -> dict:
    """A checkpoint's trainer state: steps, epoch, images seen (`train_samples`), `train_runtime`, `log_history`."""
    return json.loads((Path(checkpoint) / TRAINER_STATE).read_text())


def images_seen(checkpoint: str | os.PathLike) -> int:
    """How many training images a checkpoint's weights have seen (its trainer state's `train_samples`)."""
    return int(trainer_state(checkpoint)["train_samples"])
