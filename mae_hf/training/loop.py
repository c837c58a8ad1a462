"""The one training loop, for both autoencoders: `training_function(config, args)`.

It follows accelerate's `examples/cv_example.py`: hyperparameters in one object (`TrainingConfig`), infrastructure
in another (`RunArgs`), and `Accelerator` doing device placement, multi-process data sharding, gradient
accumulation, mixed precision, checkpoints and tracking. Corruption is a function of the sample
(`mae_hf.evaluation.draw_noise` with stream `epoch + 1`), so a resumed run sees exactly the noise an uninterrupted
one would and a 2-process run with the same global batch computes the same updates as a 1-process run.
"""

import contextlib
import json
import logging
import math
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import set_seed
from datasets import DatasetDict
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm
from transformers import get_scheduler

from .. import cards, hub
from ..data import dataset_provenance, image_processor, load_image_dataset
from ..evaluation import draw_noise, evaluate, objective, own_corruption, sample_seed
from ..loading import no_progress_bars
from ..mae import mask_ratio_set
from ..profiles import PROFILES, profile_of_dataset
from ..validation import validation_indices
from .checkpointing import (
    any_process,
    find_checkpoints,
    prepare_output_dir,
    resolve_resume,
    save_checkpoint,
    write_failure,
)
from .config import TRAINER_STATE, ConfigurationError, NonFiniteLossError, OutputWriteError, RunArgs, TrainingConfig
from .data import ImageTensorDataset, collate_batch, image_shape
from .models import build_model, build_optimizer

logger = logging.getLogger(__name__)

__all__ = ["training_function", "batch_mask_ratio"]


def batch_mask_ratio(mask_ratio_range: list[float], seed: int, epoch: int, batch: int) -> float:
    """
    The mask ratio of one training batch under `--mask_ratio_range LOW HIGH`: uniform in [LOW, HIGH], a function of
    (seed, epoch, batch position in the epoch) only, so every process uses the same ratio for its shard of a global
    batch and a resumed run draws the same ratios.
    """
    low, high = mask_ratio_range
    generator = torch.Generator().manual_seed(sample_seed(seed ^ 0x6D61736B, epoch + 1, batch))
    return low + (high - low) * float(torch.rand((), generator=generator))


@dataclass
class _Run:
    """What the loop works on, once prepared by the accelerator."""

    accelerator: Accelerator
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    train_loader: DataLoader
    validation_loader: DataLoader
    test_loader: DataLoader
    num_train: int
    num_validation: int
    num_test: int
    max_train_steps: int
    num_train_epochs: int
    state: dict = field(default_factory=dict)

    @property
    def unwrapped(self):
        return self.accelerator.unwrap_model(self.model)


def training_function(config: TrainingConfig, args: RunArgs, data: DatasetDict | None = None) -> dict:
    """
    Train a DAE or an MAE as `config` says and write a Hub-ready folder to `args.output_dir`.

    Every epoch is evaluated on the validation split (`mae_hf.validation`: training images, trained on too), the
    test split once, at the end. Writes `config.json`, `model.safetensors` (plus the DAE's code for
    `trust_remote_code`), `preprocessor_config.json`, `training_args.json`, `eval_results.json` (the final model's
    test metrics, `mae_hf.evaluation.evaluate`),
    `train_results.json`, the model card `README.md`, `step_N`/`epoch_N` checkpoints and, with tracking,
    TensorBoard logs in `runs/`. Everything that can be checked is checked before any work (`ConfigurationError`).
    A NaN/inf loss or gradient norm raises `NonFiniteLossError` naming the step, before that step changes the
    weights; the checkpoints saved so far stay.

    Args:
        config: hyperparameters. args: infrastructure (see `RunArgs`).
        data: an already loaded `load_image_dataset` result; loaded from `config.dataset` when `None`.

    Returns:
        `{"eval": final test metrics, "train": train_results}`; with `args.stop_after_epochs` short of the run,
        `{"eval": None, "train": None, "stopped_after_epochs": N}` (nothing but checkpoints written).
    """
    config.validate()
    args.validate()
    output_dir = Path(args.output_dir)
    repo_id = _check_hub_access(args, output_dir)
    accelerator = _make_accelerator(config, args, output_dir)
    data = _load_data(config, data)
    image_size, num_channels = image_shape(data["train"])
    set_seed(config.seed)
    model = build_model(config, image_size, num_channels)
    _name_profile(model, config, data["train"], num_channels)
    checkpoint = resolve_resume(args, output_dir, accelerator.num_processes)
    prepare_output_dir(
        args, output_dir, checkpoint is not None or args.resume_from_checkpoint == "latest", accelerator.is_main_process
    )
    accelerator.wait_for_everyone()
    run = _prepare(accelerator, model, config, data, image_size, num_channels)
    hyperparameters = hub.redact_values({**asdict(config), **args.to_dict()}, hub.known_tokens(args.hub_token))
    if args.with_tracking:
        accelerator.init_trackers(
            "runs",
            {
                k: (json.dumps(v) if isinstance(v, (dict, list)) else v)
                for k, v in hyperparameters.items()
                if isinstance(v, (int, float, str, bool, dict, list))
            },
        )
    _restore(run, checkpoint)
    eval_metrics = _train(run, config, args, output_dir)
    if eval_metrics is None:
        accelerator.print(
            f"Stopped after epoch {run.state['epoch']} of {run.num_train_epochs} (--stop_after_epochs); the same "
            f"command with --resume_from_checkpoint latest goes on from {output_dir}/epoch_{run.state['epoch'] - 1}."
        )
        if args.with_tracking:
            accelerator.end_training()
        accelerator.wait_for_everyone()
        return {"eval": None, "train": None, "stopped_after_epochs": run.state["epoch"]}
    train_results = _train_results(run, config, hyperparameters["command"])
    if args.with_tracking:
        accelerator.end_training()
    accelerator.wait_for_everyone()
    failure = None
    if accelerator.is_main_process:
        model_id = hub.redact(repo_id or args.hub_model_id or str(output_dir), hub.known_tokens(args.hub_token))
        model_is_folder = not (repo_id or args.hub_model_id)  # the card's snippet loads the output folder
        try:
            _write_final_folder(
                run.unwrapped,
                output_dir,
                config,
                hyperparameters,
                eval_metrics,
                train_results,
                model_id,
                model_is_folder,
            )
        except OutputWriteError as err:
            failure = err
    if any_process(accelerator, failure is not None):
        raise failure or OutputWriteError(f"Could not write the final model into {output_dir} (see the main process).")
    if accelerator.is_main_process:
        if repo_id is not None:
            url = hub.publish(output_dir, repo_id, token=args.hub_token, private=args.hub_private_repo)
            accelerator.print(f"Pushed {output_dir} to {url}")
    accelerator.wait_for_everyone()
    return {"eval": eval_metrics, "train": train_results}


# ----------------------------------------------------------------------------------------------------------------
# Set-up


def _check_hub_access(args: RunArgs, output_dir: Path) -> str | None:
    if not args.push_to_hub:
        return None
    try:
        return hub.check_push_access(args.hub_model_id or output_dir.resolve().name, token=args.hub_token)
    except ValueError as err:
        raise ConfigurationError(str(err)) from err


def _make_accelerator(config: TrainingConfig, args: RunArgs, output_dir: Path) -> Accelerator:
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
    return accelerator


def _load_data(config: TrainingConfig, data: DatasetDict | None) -> DatasetDict:
    if data is not None:
        return data
    try:
        return load_image_dataset(config.dataset)
    except ValueError as err:
        raise ConfigurationError(str(err)) from err


def _name_profile(model, config: TrainingConfig, train_split, num_channels: int) -> None:
    """Write the dataset profile into the model's config (`config.json`'s `dataset_profile`): how the app prepares a
    picture for it. `--dataset_profile`, else the one the dataset is (`mae_hf.profiles.profile_of_dataset`)."""
    name = config.dataset_profile
    if name is None:
        source = dataset_provenance(config.dataset)["hub_id"] or config.dataset
        name = profile_of_dataset(source, train_split.features["label"].names, num_channels)
    elif PROFILES[name].num_channels != num_channels:
        raise ConfigurationError(
            f"--dataset_profile {name} is for {PROFILES[name].num_channels}-channel images but dataset "
            f"{config.dataset!r} has {num_channels}; choose a profile with {num_channels} (mae_hf.profiles)."
        )
    if name is not None:
        model.config.dataset_profile = name


def _prepare(accelerator, model, config: TrainingConfig, data, image_size: int, num_channels: int) -> _Run:
    """Decode the data once, build the optimiser and schedule, and let the accelerator prepare them."""
    train_set = ImageTensorDataset.from_dataset(data["train"], num_channels, image_size, config.max_train_samples)
    try:
        held_out = validation_indices(data["train"].select(range(len(train_set)))["label"], config.validation_size)
    except ValueError as err:
        raise ConfigurationError(f"{err} Lower --validation_size.") from err
    validation_set = train_set.subset(held_out[: config.max_eval_samples])
    test_set = ImageTensorDataset.from_dataset(data["test"], num_channels, image_size, config.max_eval_samples)
    # The order is seeded (the same on every process) and depends only on (seed, epoch).
    train_loader = DataLoader(
        train_set, batch_size=config.per_device_train_batch_size, shuffle=True, collate_fn=collate_batch
    )
    validation_loader, test_loader = (
        DataLoader(split, batch_size=config.per_device_eval_batch_size, shuffle=False, collate_fn=collate_batch)
        for split in (validation_set, test_set)
    )
    optimizer = build_optimizer(model, config, accelerator.device.type)
    # Steps are counted on the prepared (sharded) loader, as in transformers' *_no_trainer.py examples.
    steps_per_epoch = math.ceil(
        math.ceil(len(train_set) / (config.per_device_train_batch_size * accelerator.num_processes))
        / config.gradient_accumulation_steps
    )
    max_train_steps = config.max_train_steps or config.num_train_epochs * steps_per_epoch
    # The prepared scheduler steps once per process per optimizer step, hence the factor.
    scheduler = get_scheduler(
        config.lr_scheduler_type,
        optimizer=optimizer,
        num_warmup_steps=config.num_warmup_steps * accelerator.num_processes,
        num_training_steps=max_train_steps * accelerator.num_processes,
    )
    model, optimizer, train_loader, validation_loader, test_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, validation_loader, test_loader, scheduler
    )
    if len(train_loader) == 0:
        raise ConfigurationError("The training split is empty.")
    return _Run(
        accelerator,
        model,
        optimizer,
        scheduler,
        train_loader,
        validation_loader,
        test_loader,
        len(train_set),
        len(validation_set),
        len(test_set),
        max_train_steps,
        math.ceil(max_train_steps / steps_per_epoch),
    )


def _restore(run: _Run, checkpoint: Path | None) -> None:
    """The trainer state from `checkpoint` (weights, optimizer, scheduler and RNG states included), or a fresh one."""
    run.state = {
        "completed_steps": 0,
        "epoch": 0,
        "batches_in_epoch": 0,
        "epoch_loss_sum": 0.0,
        "epoch_loss_count": 0,
        "train_runtime": 0.0,
        "train_samples": 0,
        "log_history": [],
    }
    if checkpoint is None:
        return
    run.accelerator.load_state(str(checkpoint))
    run.state = json.loads((checkpoint / TRAINER_STATE).read_text())
    s = run.state
    run.accelerator.print(
        f"Resuming from checkpoint {checkpoint} (step {s['completed_steps']}, epoch {s['epoch']}, "
        f"batch {s['batches_in_epoch']} of {len(run.train_loader)})"
    )


# ----------------------------------------------------------------------------------------------------------------
# Training


def _train(run: _Run, config: TrainingConfig, args: RunArgs, output_dir: Path) -> dict | None:
    """Every remaining epoch (evaluated on validation and checkpointed at its end); returns the final model's test
    metrics (the test split's one evaluation), or None when the run stopped at `--stop_after_epochs` with epochs
    left."""
    acc, state = run.accelerator, run.state
    total_batch = config.per_device_train_batch_size * acc.num_processes * config.gradient_accumulation_steps
    acc.print(
        f"***** Training {config.model.upper()} on {config.dataset} *****\n"
        f"  examples: {run.num_train} train ({run.num_validation} of them the validation split) / {run.num_test} "
        f"test, epochs = {run.num_train_epochs}, "
        f"optimisation steps = {run.max_train_steps}, total batch size = {total_batch} "
        f"({acc.num_processes} process(es) on {acc.device})"
    )
    stop = args.stop_after_epochs if args.stop_after_epochs and args.stop_after_epochs < run.num_train_epochs else None
    starting_epoch = state["epoch"]
    # Log lines (a saved checkpoint, a warning) go above the bar, not onto its line; the bar is closed (its line
    # ended) before an error is printed.
    with (
        _logs_above_the_bar(acc.is_local_main_process),
        tqdm(
            range(run.max_train_steps), initial=state["completed_steps"], disable=not acc.is_local_main_process
        ) as progress,
    ):
        for epoch in range(starting_epoch, run.num_train_epochs):
            if state["completed_steps"] >= run.max_train_steps or (stop is not None and epoch >= stop):
                break
            epoch_done = _train_epoch(run, config, args, output_dir, epoch, progress, resuming=epoch == starting_epoch)
            _end_of_epoch(run, config, args, output_dir, epoch, progress, epoch_done)
    if stop is not None and state["epoch"] >= stop and state["completed_steps"] < run.max_train_steps:
        return None
    return evaluate(run.model, run.test_loader, acc, seed=config.eval_seed)


def _logs_above_the_bar(enabled: bool):
    """tqdm's `logging_redirect_tqdm` where the root logger prints to the console (the script's `basicConfig`): log
    records are written with `tqdm.write`, above the progress bar. Without a console handler nothing is changed."""
    console = any(
        isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) in (sys.stdout, sys.stderr)
        for h in logging.root.handlers
    )
    return logging_redirect_tqdm(tqdm_class=tqdm) if enabled and console else contextlib.nullcontext()


def _train_epoch(run: _Run, config, args, output_dir: Path, epoch: int, progress, resuming: bool) -> bool:
    """One epoch (or what is left of it after a resume); True when it ran to its end."""
    acc, state, unwrapped = run.accelerator, run.state, run.unwrapped
    run.model.train()
    run.train_loader.set_epoch(epoch)
    skip = state["batches_in_epoch"] if resuming else 0
    loader = acc.skip_first_batches(run.train_loader, skip) if skip else run.train_loader
    batches = skip
    if not skip:
        state["epoch_loss_sum"], state["epoch_loss_count"] = 0.0, 0
    kind = own_corruption(unwrapped).kind
    step_every = args.checkpointing_steps if isinstance(args.checkpointing_steps, int) else None
    step_list = set(args.checkpointing_steps) if isinstance(args.checkpointing_steps, list) else set()
    tick = time.perf_counter()
    for batch in loader:
        with acc.accumulate(run.model):
            noise = draw_noise(unwrapped, kind, batch["index"].cpu(), config.seed, stream=epoch + 1)
            ratio = (
                unwrapped.config.mask_ratio
                if config.mask_ratio_range is None
                else batch_mask_ratio(config.mask_ratio_range, config.seed, epoch, batches)
            )
            with mask_ratio_set(unwrapped, ratio):
                losses, _ = objective(run.model, batch["pixel_values"], noise)
            loss = losses.mean()
            mean_loss = acc.reduce(loss.detach(), reduction="mean")  # the same on every process
            _check_finite(mean_loss, state["completed_steps"] + 1, epoch, output_dir, "training loss")
            acc.backward(loss)
            if acc.sync_gradients:
                grad_norm = acc.clip_grad_norm_(run.model.parameters(), config.max_grad_norm)
                if acc.scaler is None:
                    _check_finite(
                        torch.as_tensor(grad_norm), state["completed_steps"] + 1, epoch, output_dir, "gradient norm"
                    )
            run.optimizer.step()
            run.scheduler.step()
            run.optimizer.zero_grad()
        batches += 1
        state["epoch_loss_sum"] += mean_loss.item()
        state["epoch_loss_count"] += 1
        state["train_samples"] += len(batch["index"]) * acc.num_processes
        if not acc.sync_gradients:
            continue
        state["completed_steps"] += 1
        steps = state["completed_steps"]
        progress.update(1)
        if steps % args.logging_steps == 0 or steps == run.max_train_steps:
            progress.set_postfix(loss=f"{mean_loss.item():.4f}")
            if args.with_tracking:
                acc.log(
                    {"train_loss": mean_loss.item(), "learning_rate": run.scheduler.get_last_lr()[0], "epoch": epoch},
                    step=steps,
                )
        at_end = batches == len(run.train_loader)
        if ((step_every and steps % step_every == 0) or steps in step_list) and not at_end:
            state["train_runtime"] += time.perf_counter() - tick
            save_checkpoint(
                acc,
                output_dir,
                f"step_{steps}",
                {**state, "epoch": epoch, "batches_in_epoch": batches},
                args.checkpoints_total_limit,
            )
            tick = time.perf_counter()
        if steps >= run.max_train_steps:
            break
    state["train_runtime"] += time.perf_counter() - tick
    state["batches_in_epoch"] = batches
    return batches == len(run.train_loader)


def _check_finite(value: torch.Tensor, step: int, epoch: int, output_dir: Path, what: str) -> None:
    """Raise `NonFiniteLossError` naming the step and what was written before it: the latest checkpoint, or none."""
    if torch.isfinite(value).all():
        return
    checkpoints = find_checkpoints(output_dir)
    if checkpoints:
        kept = f"the latest checkpoint kept is {checkpoints[-1][1]} (step {checkpoints[-1][0]})"
    else:
        where = "holds none" if output_dir.is_dir() else "was not created"
        kept = f"no checkpoint was written ({output_dir} {where})"
    raise NonFiniteLossError(
        f"Non-finite {what} ({value.item()}) at step {step} (epoch {epoch}), before that step changed the weights; "
        f"{kept}. Lower --learning_rate or raise --num_warmup_steps and start the run again (a resume repeats the "
        "same steps with the learning-rate schedule saved in the checkpoint)."
    )


def _end_of_epoch(run: _Run, config, args, output_dir: Path, epoch: int, progress, epoch_done: bool) -> None:
    """Validation metrics and the log line of an epoch, and its checkpoint when it ran to its end."""
    acc, state = run.accelerator, run.state
    metrics = evaluate(run.model, run.validation_loader, acc, seed=config.eval_seed)
    train_loss = state["epoch_loss_sum"] / max(state["epoch_loss_count"], 1)
    state["log_history"].append(
        {
            "epoch": epoch,
            "step": state["completed_steps"],
            "train_loss": train_loss,
            "train_samples": state["train_samples"],
            **{f"validation_{k}": v for k, v in metrics.items()},
        }
    )
    line = (
        f"epoch {epoch}: step {state['completed_steps']}/{run.max_train_steps}, train loss {train_loss:.5f}, "
        + ", ".join(f"validation {k} {v:.4f}" for k, v in metrics.items() if k != "num_samples")
    )
    if acc.is_local_main_process:
        progress.write(line)  # above the progress bar, not on its line
    if args.with_tracking:
        acc.log(
            {"epoch_train_loss": train_loss, **{f"validation_{k}": v for k, v in metrics.items()}},
            step=state["completed_steps"],
        )
    if epoch_done:
        save_checkpoint(
            acc,
            output_dir,
            f"epoch_{epoch}",
            {**state, "epoch": epoch + 1, "batches_in_epoch": 0, "epoch_loss_sum": 0.0, "epoch_loss_count": 0},
            args.checkpoints_total_limit,
        )
        state.update(epoch=epoch + 1, batches_in_epoch=0)


# ----------------------------------------------------------------------------------------------------------------
# The finished folder


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


def _train_results(run: _Run, config: TrainingConfig, command: str) -> dict:
    s, acc = run.state, run.accelerator
    return {
        "completed_steps": s["completed_steps"],
        "epochs": run.num_train_epochs,
        "train_samples": s["train_samples"],
        "train_runtime": round(s["train_runtime"], 3),
        "train_samples_per_second": round(s["train_samples"] / max(s["train_runtime"], 1e-9), 3),
        "final_train_loss": s["log_history"][-1]["train_loss"] if s["log_history"] else None,
        "num_parameters": run.unwrapped.num_parameters(),
        "num_processes": acc.num_processes,
        "total_train_batch_size": config.per_device_train_batch_size
        * acc.num_processes
        * config.gradient_accumulation_steps,
        "mixed_precision": acc.mixed_precision,
        "hardware": _hardware(acc),
        "command": command,
        "num_train_examples": run.num_train,
        "num_validation_examples": run.num_validation,
        "num_eval_examples": run.num_test,
        "log_history": s["log_history"],
    }


def _write_final_folder(
    model,
    output_dir: Path,
    config: TrainingConfig,
    hyperparameters: dict,
    eval_metrics: dict,
    train_results: dict,
    model_id: str,
    model_is_folder: bool,
) -> None:
    """Stage the model, processor, JSON files and card in a temporary folder, then move them in; the card last. A
    failed write (a full disk) removes the staging folder and raises `OutputWriteError`."""
    from safetensors import SafetensorError

    staging = output_dir / ".tmp-final"
    if staging.exists():
        shutil.rmtree(staging)
    try:
        _stage_final_folder(
            model, staging, config, hyperparameters, eval_metrics, train_results, model_id, model_is_folder
        )
    except (OSError, RuntimeError, SafetensorError) as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise write_failure(err, "the final model", output_dir) from err
    names = sorted(p.name for p in staging.iterdir() if p.name != "README.md") + ["README.md"]
    for name in names:
        (staging / name).chmod(0o644)  # safetensors are written 0600 through a temporary file
        os.replace(staging / name, output_dir / name)
    staging.rmdir()
    logger.info("Wrote %s (%s)", output_dir, ", ".join(names))


def _stage_final_folder(
    model,
    staging: Path,
    config: TrainingConfig,
    hyperparameters: dict,
    eval_metrics: dict,
    train_results: dict,
    model_id: str,
    model_is_folder: bool,
) -> None:
    with no_progress_bars():
        model.save_pretrained(staging)
    image_processor(model.config.image_size, model.config.num_channels).save_pretrained(staging)
    (staging / "training_args.json").write_text(json.dumps(hyperparameters, indent=2, default=str))
    (staging / "eval_results.json").write_text(json.dumps({"split": "test", **eval_metrics}, indent=2))
    (staging / "train_results.json").write_text(json.dumps(train_results, indent=2))
    (staging / ".gitignore").write_text("".join(f"{pattern}\n" for pattern in hub.IGNORE_PATTERNS))
    card = cards.render_model_card(
        model_kind=config.model,
        model_id=model_id,
        model_is_folder=model_is_folder,
        model_config=model.config,
        config=asdict(config),
        eval_metrics=eval_metrics,
        train_results=train_results,
    )
    card.save(staging / "README.md")
