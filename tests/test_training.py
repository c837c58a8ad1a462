"""The training loop, in process, on tiny models and tiny data (mae_hf/training/)."""

import json
import re

import pytest
import torch
from datasets import DatasetDict
from safetensors.torch import load_file

from mae_hf import DAEConfig, DAEModel
from mae_hf.training import (
    ConfigurationError,
    NonFiniteLossError,
    RunArgs,
    TrainingConfig,
    evaluate_per_sample,
    evaluation_dataloader,
    find_checkpoints,
    training_function,
)

from .conftest import TINY_MAE

TINY_DAE = {"hidden_channels": [8, 8, 4]}


@pytest.fixture(scope="module")
def tiny_data(mnist):
    """64 training and 24 test digits of the embedded MNIST."""
    return DatasetDict(train=mnist["train"].select(range(64)), test=mnist["test"].select(range(24)))


def run(tmp_path, data, name="run", args=None, **config):
    config = {
        "model": "dae",
        "config_overrides": TINY_DAE,
        "num_train_epochs": 2,
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 16,
        **config,
    }
    args = {"output_dir": str(tmp_path / name), **(args or {})}
    return training_function(TrainingConfig(**config), RunArgs(**args), data=data)


# ----------------------------------------------------------------------------------------------------------------
# The loop


def test_training_reduces_the_loss_and_writes_the_folder(tmp_path, tiny_data):
    result = run(tmp_path, tiny_data, model="mae", config_overrides=TINY_MAE, num_train_epochs=3, learning_rate=3e-3)
    history = result["train"]["log_history"]
    assert [h["epoch"] for h in history] == [0, 1, 2]
    assert history[-1]["validation_loss"] < history[0]["validation_loss"]
    assert not any(k.startswith("test_") for h in history for k in h)  # the test split is scored once, at the end
    out = tmp_path / "run"
    for name in (
        "config.json",
        "model.safetensors",
        "README.md",
        "training_args.json",
        "eval_results.json",
        "train_results.json",
        ".gitignore",
    ):
        assert (out / name).is_file(), name
    assert json.loads((out / "eval_results.json").read_text())["loss"] == pytest.approx(result["eval"]["loss"])
    assert result["train"]["completed_steps"] == 3 * 64 // 8
    assert not any(p.name.startswith(".tmp-") for p in out.iterdir())


def test_same_seed_same_weights_other_seed_other_weights(tmp_path, tiny_data):
    run(tmp_path, tiny_data, "a", max_train_steps=5)
    run(tmp_path, tiny_data, "b", max_train_steps=5)
    run(tmp_path, tiny_data, "c", max_train_steps=5, seed=1)
    a, b, c = (load_file(tmp_path / n / "model.safetensors") for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_checkpoints_every_n_steps_and_epoch_with_retention(tmp_path, tiny_data):
    # 64 / 8 = 8 steps per epoch, 2 epochs: step_3, step_6, epoch_0 (8), step_9, step_12, step_15, epoch_1 (16)
    run(tmp_path, tiny_data, args={"checkpointing_steps": 3, "checkpoints_total_limit": 3})
    checkpoints = find_checkpoints(tmp_path / "run")
    assert [(s, p.name) for s, p in checkpoints] == [(12, "step_12"), (15, "step_15"), (16, "epoch_1")]
    state = json.loads((tmp_path / "run" / "step_12" / "trainer_state.json").read_text())
    assert (state["epoch"], state["batches_in_epoch"]) == (1, 4)
    assert (tmp_path / "run" / "step_12" / "optimizer.bin").is_file()


def test_resume_in_process_from_a_mid_epoch_checkpoint_gives_the_same_weights(tmp_path, tiny_data):
    run(tmp_path, tiny_data, "full", args={"checkpointing_steps": 3, "checkpoints_total_limit": 10})
    # A second run resumes from full/step_6 (epoch 0, batch 6 of 8) in a fresh folder.
    result = run(tmp_path, tiny_data, "resumed", args={"resume_from_checkpoint": str(tmp_path / "full" / "step_6")})
    assert result["train"]["completed_steps"] == 16
    full, again = (load_file(tmp_path / n / "model.safetensors") for n in ("full", "resumed"))
    assert all(torch.equal(full[k], again[k]) for k in full)


def test_a_run_stopped_after_some_epochs_goes_on_to_the_same_weights(tmp_path, tiny_data):
    """--stop_after_epochs keeps the whole run's schedule: stopped after epoch 1 of 3, then resumed, it ends with the
    weights of the run trained in one go; the stopped folder has checkpoints only."""
    run(tmp_path, tiny_data, "full", num_train_epochs=3)
    stopped = run(tmp_path, tiny_data, "split", num_train_epochs=3, args={"stop_after_epochs": 1})
    out = tmp_path / "split"
    assert stopped == {"eval": None, "train": None, "stopped_after_epochs": 1}
    assert [p.name for _, p in find_checkpoints(out)] == ["epoch_0"] and not (out / "README.md").exists()
    again = run(
        tmp_path,
        tiny_data,
        "split",
        num_train_epochs=3,
        args={"stop_after_epochs": 1, "resume_from_checkpoint": "latest"},
    )
    assert again["stopped_after_epochs"] == 1  # asked again to stop there: nothing more is trained
    result = run(tmp_path, tiny_data, "split", num_train_epochs=3, args={"resume_from_checkpoint": "latest"})
    assert result["train"]["completed_steps"] == 3 * 64 // 8
    full, split = (load_file(tmp_path / n / "model.safetensors") for n in ("full", "split"))
    assert all(torch.equal(full[k], split[k]) for k in full)
    with pytest.raises(ConfigurationError, match="--stop_after_epochs must be >= 1"):
        run(tmp_path, tiny_data, "bad", args={"stop_after_epochs": 0})


def test_non_finite_loss_stops_with_the_step_and_keeps_checkpoints(tmp_path, tiny_data):
    with pytest.raises(NonFiniteLossError, match=r"at step 2 \(epoch 0\)"):
        run(
            tmp_path,
            tiny_data,
            model="mae",
            config_overrides=TINY_MAE,
            learning_rate=1e6,
            lr_scheduler_type="constant",
            args={"checkpointing_steps": 1},
        )
    out = tmp_path / "run"
    assert [p.name for _, p in find_checkpoints(out)] == ["step_1"]
    assert not (out / "model.safetensors").exists() and not (out / "README.md").exists()


def test_output_dir_must_be_empty_unless_overwrite_or_resume(tmp_path, tiny_data):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "old.txt").write_text("x")
    with pytest.raises(ConfigurationError, match="--overwrite_output_dir"):
        run(tmp_path, tiny_data, max_train_steps=1)
    run(tmp_path, tiny_data, max_train_steps=1, args={"overwrite_output_dir": True})
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_mae_preset_must_match_the_images(tmp_path, tiny_data):
    rgb = tiny_data.map(lambda row: {"image": row["image"].convert("RGB").resize((32, 32))})
    with pytest.raises(ConfigurationError, match="--preset cifar10"):
        run(tmp_path, rgb, model="mae", config_overrides=TINY_MAE)
    assert not (tmp_path / "run").exists()  # nothing written


def test_dae_follows_the_dataset_image_shape(tmp_path, tiny_data):
    rgb = tiny_data.map(lambda row: {"image": row["image"].convert("RGB").resize((32, 32))})
    run(tmp_path, rgb, max_train_steps=2)
    config = DAEConfig.from_pretrained(tmp_path / "run")
    assert (config.image_size, config.num_channels) == (32, 3)
    assert DAEModel.from_pretrained(tmp_path / "run").config.hidden_channels == TINY_DAE["hidden_channels"]


def test_the_model_folder_names_its_dataset_profile(tmp_path, tiny_data):
    run(tmp_path, tiny_data, name="digits", num_train_epochs=1)
    assert json.loads((tmp_path / "digits" / "config.json").read_text())["dataset_profile"] == "digits"
    run(tmp_path, tiny_data, name="items", num_train_epochs=1, dataset_profile="clothing")
    assert DAEConfig.from_pretrained(tmp_path / "items").dataset_profile == "clothing"  # plain transformers keeps it
    with pytest.raises(ConfigurationError, match="--dataset_profile rgb is for 3-channel images but dataset"):
        run(tmp_path, tiny_data, name="rgb", num_train_epochs=1, dataset_profile="rgb")


@pytest.mark.parametrize(
    "config, message",
    [
        ({"model": "vae"}, "Unknown model"),
        ({"dataset_profile": "comics"}, "Unknown --dataset_profile 'comics'; choose one of"),
        ({"learning_rate": -1e-3}, "--learning_rate must be a positive"),
        ({"model": "mae", "mask_ratio": 1.0}, r"--mask_ratio must be in \[0, 1\)"),
        ({"model": "mae", "mask_ratio": -0.1}, r"--mask_ratio must be in \[0, 1\)"),
        ({"model": "mae", "preset": "imagenet"}, "Unknown MAE preset"),
        ({"mask_ratio": 0.5}, "--mask_ratio applies to --corruption mask only"),
        ({"model": "mae", "noise_factor": 0.3}, "--noise_factor applies to --corruption noise only"),
        ({"model": "mae", "corruption": "noise", "mask_ratio": 0.5}, "--mask_ratio applies to --corruption mask"),
        ({"corruption": "blur"}, "Unknown corruption 'blur'"),
        ({"config_overrides": {"corruption": "mask"}}, "Set corruption with --corruption"),
        ({"config_overrides": {"hiden_channels": [4]}}, "not fields of the DAE config"),
        ({"lr_scheduler_type": "exponential"}, "Unknown --lr_scheduler_type"),
        ({"per_device_train_batch_size": 0}, "--per_device_train_batch_size must be >= 1"),
    ],
)
def test_bad_hyperparameters_name_the_flag(config, message):
    with pytest.raises(ConfigurationError, match=message):
        TrainingConfig(**{"model": "dae", **config})


# ----------------------------------------------------------------------------------------------------------------
# The control cells of the architecture x corruption grid: ViT + noise, CNN + masking


@pytest.mark.parametrize("model,corruption", [("mae", "noise"), ("dae", "mask")])
def test_control_cells_train_and_evaluate_through_the_same_loop(tmp_path, tiny_data, model, corruption):
    overrides = TINY_MAE if model == "mae" else TINY_DAE
    result = run(
        tmp_path,
        tiny_data,
        model=model,
        corruption=corruption,
        config_overrides=overrides,
        num_train_epochs=2,
        learning_rate=3e-3,
    )
    metrics = result["eval"]
    assert ("psnr_masked" in metrics) == (corruption == "mask")
    history = result["train"]["log_history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    folder = tmp_path / "run"
    config = json.loads((folder / "config.json").read_text())
    assert config["corruption"] == corruption
    card = (folder / "README.md").read_text()
    if model == "mae":
        assert config["mask_ratio"] == 0.0 and config["noise_factor"] == 0.5
        assert "masking is off" in card and "sees all 49 patches" in card
    else:
        assert config["mask_ratio"] == 0.75
        assert "CNN + patch" in card and "masked-region PSNR" in card
    # the per-image values behind the means, in dataset order
    from mae_hf.loading import load_dae, load_mae

    loaded = (load_mae if model == "mae" else load_dae)(str(folder))
    loader = evaluation_dataloader(tiny_data["test"], loaded, batch_size=7)
    per_image = evaluate_per_sample(loaded, loader)
    assert per_image["index"].tolist() == list(range(len(tiny_data["test"])))
    assert per_image["psnr"].mean() == pytest.approx(metrics["psnr"], rel=1e-5)


# ----------------------------------------------------------------------------------------------------------------
# Long runs that fail well: damaged checkpoints, divergence


def _unfinished_copy(tmp_path, full, name):
    """A copy of a finished run as a crash would leave it: every checkpoint, none of the final files."""
    import shutil

    crashed = tmp_path / name
    shutil.copytree(full, crashed)
    for final in ("README.md", "model.safetensors", "config.json", "eval_results.json", "train_results.json"):
        (crashed / final).unlink()
    return crashed


@pytest.mark.parametrize("damaged", ["model.safetensors", "optimizer.bin", "random_states_0.pkl"])
def test_a_damaged_newest_checkpoint_is_named_and_the_previous_one_used(tmp_path, tiny_data, caplog, damaged):
    run(tmp_path, tiny_data, "full", num_train_epochs=3, args={"checkpoints_total_limit": 0})
    crashed = _unfinished_copy(tmp_path, tmp_path / "full", "crashed")
    newest = crashed / "epoch_2"
    (newest / damaged).write_bytes((newest / damaged).read_bytes()[:20])  # truncated, as by a full disk
    # an explicitly named damaged checkpoint stops the run with the file and the one to use instead
    with pytest.raises(ConfigurationError, match=rf"epoch_2: {damaged} is damaged.*resume from .*epoch_1"):
        run(
            tmp_path,
            tiny_data,
            "crashed",
            num_train_epochs=3,
            args={"resume_from_checkpoint": str(newest), "checkpoints_total_limit": 0},
        )
    # `latest` says so and falls back to epoch_1: the final weights are those of the uninterrupted run
    result = run(
        tmp_path,
        tiny_data,
        "crashed",
        num_train_epochs=3,
        args={"resume_from_checkpoint": "latest", "checkpoints_total_limit": 0},
    )
    assert f"epoch_2 is damaged: {damaged}" in caplog.text
    assert result["train"]["completed_steps"] == 24
    full, again = (load_file(tmp_path / n / "model.safetensors") for n in ("full", "crashed"))
    assert all(torch.equal(full[k], again[k]) for k in full)


def test_an_empty_weights_file_is_named(tmp_path, tiny_data):
    from mae_hf.training import check_checkpoint

    run(tmp_path, tiny_data, "full", args={"checkpoints_total_limit": 0})
    (tmp_path / "full" / "epoch_1" / "model.safetensors").write_bytes(b"")
    assert check_checkpoint(tmp_path / "full" / "epoch_1") == "model.safetensors is missing or empty"
    assert check_checkpoint(tmp_path / "full" / "epoch_0") is None


@pytest.mark.parametrize("model", ["dae", "mae"])
def test_a_diverging_run_stops_with_the_step_not_a_traceback(tmp_path, tiny_data, model, capsys):
    """--learning_rate 1e9: our message (the DAE's BCE no longer raises on NaN), exit status 3, checkpoints kept."""
    from mae_hf.training.arguments import main

    out = tmp_path / "out"
    overrides = TINY_MAE if model == "mae" else TINY_DAE
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("mae_hf.training.loop.load_image_dataset", lambda source: tiny_data)
        code = main(
            [
                "--model",
                model,
                "--dataset",
                "mnist",
                "--learning_rate",
                "1e9",
                "--num_warmup_steps",
                "0",
                "--lr_scheduler_type",
                "constant",
                "--per_device_train_batch_size",
                "8",
                "--checkpointing_steps",
                "1",
                "--config_overrides",
                json.dumps(overrides),
                "--output_dir",
                str(out),
            ]
        )
    err = capsys.readouterr().err
    assert code == 3 and "training stopped: Non-finite" in err and "at step" in err and "Traceback" not in err
    assert not (out / "model.safetensors").exists() and find_checkpoints(out)  # nothing written over, steps kept


class _RunsCode:
    """A pickle that runs a shell command when loaded: what a crafted checkpoint file would hold."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_would_run_code_is_refused_before_anything_loads_it(tmp_path, tiny_data, caplog):
    """A crafted random_states_0.pkl (its unpickling calls os.system): check_checkpoint names it, `latest` skips it,
    an explicit resume refuses it, and the command never runs; a genuine checkpoint still passes."""
    from mae_hf.training import check_checkpoint
    from mae_hf.training.checkpointing import resolve_resume

    run(tmp_path, tiny_data, "full", args={"checkpoints_total_limit": 0})
    out, marker = tmp_path / "full", tmp_path / "pwned"
    crafted = out / "epoch_1" / "random_states_0.pkl"
    torch.save({"step": 0, "random_state": _RunsCode(marker)}, crafted)

    assert check_checkpoint(out / "epoch_0") is None  # the genuine RNG state (numpy arrays) still loads
    problem = check_checkpoint(out / "epoch_1")
    assert problem and "random_states_0.pkl is damaged or unsafe" in problem
    assert resolve_resume(RunArgs(output_dir=str(out), resume_from_checkpoint="latest"), out) == out / "epoch_0"
    assert "epoch_1 is damaged: random_states_0.pkl" in caplog.text
    explicit = RunArgs(output_dir=str(out), resume_from_checkpoint=str(out / "epoch_1"))
    with pytest.raises(ConfigurationError, match="random_states_0.pkl is damaged or unsafe"):
        resolve_resume(explicit, out)
    assert not marker.exists(), "loading the checkpoint ran its code"


# ----------------------------------------------------------------------------------------------------------------
# A full disk: a clear error, nothing half-written left


def _disk_full(kind):
    """An `Accelerator.save_state` that writes part of a checkpoint and then finds the disk full."""
    import errno
    from pathlib import Path

    from safetensors import SafetensorError

    def save_state(self_or_dir, output_dir=None, **kwargs):
        folder = Path(output_dir or self_or_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.safetensors").write_bytes(b"\x00" * 100)  # cut short
        if kind == "oserror":
            raise OSError(errno.ENOSPC, "No space left on device")
        raise SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
        )

    return save_state


@pytest.mark.parametrize("kind", ["oserror", "safetensors"])
def test_a_full_disk_while_saving_a_checkpoint_leaves_nothing_half_written(tmp_path, monkeypatch, kind):
    from accelerate import Accelerator

    from mae_hf.training import OutputWriteError
    from mae_hf.training.checkpointing import save_checkpoint

    out = tmp_path / "run"
    earlier = out / "step_2"
    earlier.mkdir(parents=True)
    (earlier / "trainer_state.json").write_text(json.dumps({"completed_steps": 2}))
    (earlier / "model.safetensors").write_bytes(b"weights")
    accelerator = Accelerator()
    monkeypatch.setattr(accelerator, "save_state", _disk_full(kind))
    with pytest.raises(OutputWriteError) as caught:
        save_checkpoint(accelerator, out, "step_4", {"completed_steps": 4}, limit=None)
    message = str(caught.value)
    assert f"checkpoint step_4 into {out}" in message and "the disk is full" in message
    assert "free some space" in message.lower() and "another --output_dir" in message and str(earlier) in message
    assert "\n" not in message
    assert sorted(p.name for p in out.iterdir()) == ["step_2"]  # no .tmp-step_4, no step_4
    assert (earlier / "model.safetensors").read_bytes() == b"weights"  # the earlier checkpoint is intact


def test_a_full_disk_stops_the_script_with_one_line_and_no_traceback(tmp_path, tiny_data, monkeypatch, capsys):
    from mae_hf.training.arguments import main

    monkeypatch.setattr("mae_hf.training.loop.load_image_dataset", lambda source: tiny_data)
    monkeypatch.setattr("accelerate.Accelerator.save_state", _disk_full("oserror"))
    out = tmp_path / "out"
    flags = ["--model", "dae", "--dataset", "mnist", "--config_overrides", json.dumps(TINY_DAE)]
    code = main([*flags, "--per_device_train_batch_size", "8", "--checkpointing_steps", "2", "--output_dir", str(out)])
    err = capsys.readouterr().err
    assert code == 4 and "Traceback" not in err
    lines = [line for line in re.split(r"[\r\n]", err) if line.strip() and "%|" not in line]  # not the bar
    assert len(lines) == 1 and lines[0].startswith("train_accelerate.py: error: Could not write checkpoint step_2")
    assert "the disk is full" in lines[0] and "No checkpoint was written before it" in lines[0]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".tmp-")] if out.exists() else True


def test_half_written_folders_of_an_earlier_run_are_removed_at_the_next_start(tmp_path, caplog):
    from mae_hf.training.checkpointing import prepare_output_dir

    out = tmp_path / "run"
    for name in ("step_2", ".tmp-step_4", ".tmp-final"):
        (out / name).mkdir(parents=True)
        (out / name / "model.safetensors").write_bytes(b"x")
    (out / "step_2" / "trainer_state.json").write_text(json.dumps({"completed_steps": 2}))
    args = RunArgs(output_dir=str(out), resume_from_checkpoint="latest")
    with caplog.at_level("INFO", logger="mae_hf.training.checkpointing"):
        prepare_output_dir(args, out, resuming=True, is_main=True)
    assert sorted(p.name for p in out.iterdir()) == ["step_2"]
    records = [r.getMessage() for r in caplog.records]
    assert len(records) == 1 and ".tmp-final" in records[0] and ".tmp-step_4" in records[0]
    # a folder that holds only what a failed first checkpoint left is a fresh run's folder, not "not empty"
    only = tmp_path / "only"
    (only / ".tmp-step_1").mkdir(parents=True)
    prepare_output_dir(RunArgs(output_dir=str(only)), only, resuming=False, is_main=True)
    assert list(only.iterdir()) == []


@pytest.mark.parametrize("checkpointing_steps", [1, None])
def test_the_divergence_message_names_the_latest_checkpoint_or_says_none_was_written(
    tmp_path, tiny_data, checkpointing_steps
):
    """The message is true both when a checkpoint was written before the divergence and when none was."""
    with pytest.raises(NonFiniteLossError) as caught:
        run(
            tmp_path,
            tiny_data,
            model="mae",
            config_overrides=TINY_MAE,
            learning_rate=1e6,
            lr_scheduler_type="constant",
            args={"checkpointing_steps": checkpointing_steps},
        )
    message, out = str(caught.value), tmp_path / "run"
    assert "at step 2 (epoch 0)" in message
    if checkpointing_steps:
        assert f"the latest checkpoint kept is {out / 'step_1'} (step 1)" in message
    else:
        assert not out.exists()  # nothing was written, and the message says so
        assert f"no checkpoint was written ({out} was not created)" in message and "kept" not in message
