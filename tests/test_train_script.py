"""`train_accelerate.py` / `mae-hf train` as a user runs them: subprocesses on a tiny IDX dataset.

As in accelerate's tests/test_examples.py, the script runs for real and the tests check what it wrote.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mae_hf import load_image_dataset
from mae_hf.training import RunArgs, TrainingConfig, find_checkpoints, training_function

from .conftest import TINY_MAE

REPO = Path(__file__).resolve().parent.parent
SCRIPT = str(REPO / "train_accelerate.py")
TINY_MAE_FLAG = json.dumps(TINY_MAE)
# 96 train digits, batch 4: 24 steps per epoch.
DAE_ARGS = [
    "--model",
    "dae",
    "--num_train_epochs",
    "3",
    "--per_device_train_batch_size",
    "4",
    "--per_device_eval_batch_size",
    "16",
    "--seed",
    "7",
    "--checkpointing_steps",
    "5",
    "--checkpoints_total_limit",
    "3",
    "--learning_rate",
    "3e-3",
]


def _env(**extra) -> dict:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "TQDM_DISABLE": "1",
    }
    env.pop("HF_TOKEN", None)
    return {**env, **extra}


def _run(cmd: list[str], timeout: int = 300, **env) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(**env), cwd=REPO)


@pytest.fixture(scope="module")
def dae_run(tmp_path_factory, idx_dataset) -> Path:
    """One uninterrupted DAE run of the script: the smoke test's output and the resume test's reference."""
    out = tmp_path_factory.mktemp("dae") / "dae-run"
    result = _run(
        [sys.executable, SCRIPT, *DAE_ARGS, "--dataset", idx_dataset, "--output_dir", str(out), "--with_tracking"]
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def mae_run(tmp_path_factory, idx_dataset) -> Path:
    """A tiny MAE run through the console entry point `mae-hf train`."""
    out = tmp_path_factory.mktemp("mae") / "mae-run"
    result = _run(
        [
            sys.executable,
            "-m",
            "mae_hf.cli",
            "train",
            "--model",
            "mae",
            "--dataset",
            idx_dataset,
            "--output_dir",
            str(out),
            "--max_train_steps",
            "6",
            "--per_device_train_batch_size",
            "8",
            "--config_overrides",
            TINY_MAE_FLAG,
            "--mask_ratio",
            "0.5",
            "--learning_rate",
            "2e-3",
        ]
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return out


@pytest.mark.slow
def test_dae_smoke_run_writes_a_hub_ready_folder(dae_run):
    names = {p.name for p in dae_run.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "configuration_dae.py",
        "modeling_dae.py",
        "README.md",
        "training_args.json",
        "eval_results.json",
        "train_results.json",
        ".gitignore",
        "runs",
    } <= names
    train = json.loads((dae_run / "train_results.json").read_text())
    assert train["completed_steps"] == 72 and train["epochs"] == 3 and train["num_processes"] == 1
    assert "--seed 7" in train["command"] and train["command"].startswith("python ")
    metrics = json.loads((dae_run / "eval_results.json").read_text())
    assert metrics["num_samples"] == 40 and metrics["psnr"] > metrics["psnr_input"]  # it denoises
    assert json.loads((dae_run / "training_args.json").read_text())["hub_token"] is None
    assert list((dae_run / "runs").rglob("events.out.tfevents.*")), "no TensorBoard events"
    assert [p.name for _, p in find_checkpoints(dae_run)] == ["step_65", "step_70", "epoch_2"]


@pytest.mark.slow
@pytest.mark.parametrize("spelling", ["separate", "equals"])
def test_the_hub_token_reaches_no_file_and_no_log(tmp_path, idx_dataset, spelling):
    """`--hub_token X` / `--hub_token=X` and `$HF_TOKEN`: not one byte of either under the output folder (model card,
    training_args.json, train_results.json, TensorBoard events) or on stdout/stderr."""
    flag_token, env_token = "hf_FAKEflagToken1234567890", "hf_FAKEenvToken0987654321"
    flag = ["--hub_token", flag_token] if spelling == "separate" else [f"--hub_token={flag_token}"]
    out = tmp_path / "run"
    result = _run(
        [
            sys.executable,
            SCRIPT,
            "--model",
            "dae",
            "--dataset",
            idx_dataset,
            "--max_train_steps",
            "3",
            "--per_device_train_batch_size",
            "8",
            "--output_dir",
            str(out),
            "--with_tracking",
            "--checkpointing_steps",
            "2",
            *flag,
            "--hub_model_id",
            f"me/{env_token}-is-not-a-name",
        ],
        HF_TOKEN=env_token,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any("tfevents" in p.name for p in files) and (out / "README.md").is_file()
    for token in (flag_token, env_token):
        assert token not in result.stdout and token not in result.stderr
        leaked = [str(p.relative_to(out)) for p in files if token.encode() in p.read_bytes()]
        assert not leaked, f"{token} written to {leaked}"
    command = json.loads((out / "train_results.json").read_text())["command"]
    assert "--hub_token <HUB_TOKEN>" in command or "--hub_token=<HUB_TOKEN>" in command
    assert json.loads((out / "training_args.json").read_text())["hub_token"] == "<HUB_TOKEN>"


def test_the_evaluation_and_log_lines_are_printed_above_the_progress_bar_not_on_its_line(tmp_path, idx_dataset):
    """stdout and stderr into one stream, as in a terminal: the end-of-epoch line and every log line written while
    the bar is drawn ("Saved checkpoint ..." after steps 1 and 2) are lines of their own."""
    env = _env()
    env.pop("TQDM_DISABLE")
    result = subprocess.run(
        [sys.executable, SCRIPT, "--model", "dae", "--dataset", idx_dataset, "--max_train_steps", "3",
         "--per_device_train_batch_size", "8", "--checkpointing_steps", "1", "--output_dir", str(tmp_path / "run")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    pieces = re.split(r"[\r\n]", result.stdout)
    bars = [p for p in pieces if "it/s" in p or "%|" in p]
    evaluation = [p for p in pieces if "epoch 0: step 3/3" in p]
    assert bars and evaluation == [p.strip() for p in evaluation] and all(p.startswith("epoch 0") for p in evaluation)
    saved = [p for p in pieces if "Saved checkpoint" in p]
    assert len(saved) == 3, saved  # step_1, step_2, step_3
    assert all(p.startswith("INFO mae_hf.training.checkpointing: Saved checkpoint") for p in saved), saved


@pytest.mark.slow
def test_mae_smoke_run_through_mae_hf_train(mae_run):
    from transformers import ViTMAEForPreTraining

    model = ViTMAEForPreTraining.from_pretrained(mae_run)
    assert model.config.mask_ratio == 0.5 and model.config.hidden_size == TINY_MAE["hidden_size"]
    # the saved model keeps the fixed sin-cos position table that build_mae sets
    assert model.vit.embeddings.position_embeddings.abs().sum() > 0
    metrics = json.loads((mae_run / "eval_results.json").read_text())
    assert {"loss", "psnr", "ssim", "psnr_masked", "psnr_input"} <= set(metrics)
    train = json.loads((mae_run / "train_results.json").read_text())
    assert train["completed_steps"] == 6 and train["command"].startswith("mae-hf train --model mae")


@pytest.mark.slow
def test_resume_after_sigkill_mid_epoch_matches_an_uninterrupted_run(tmp_path, idx_dataset, dae_run):
    out = tmp_path / "killed"
    cmd = [sys.executable, SCRIPT, *DAE_ARGS, "--dataset", idx_dataset, "--output_dir", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(), cwd=REPO)
    deadline = time.monotonic() + 240
    while not (out / "step_10" / "trainer_state.json").exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    proc.stderr.close()
    assert not (out / "model.safetensors").exists()  # it really died before finishing

    resumed = _run(cmd + ["--resume_from_checkpoint", "latest"])
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    match = re.search(r"Resuming from checkpoint \S+ \(step (\d+), epoch (\d+), batch (\d+) of 24\)", resumed.stdout)
    assert match, resumed.stdout[-2000:]
    step, epoch, batch = map(int, match.groups())
    assert step >= 10 and 0 < batch < 24, "expected a mid-epoch checkpoint"

    expected, actual = load_file(dae_run / "model.safetensors"), load_file(out / "model.safetensors")
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=1e-7)
    assert json.loads((out / "eval_results.json").read_text())["loss"] == pytest.approx(
        json.loads((dae_run / "eval_results.json").read_text())["loss"], rel=1e-6
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path, idx_dataset):
    """2 gloo processes x batch 4 vs 1 process x batch 8; evaluation counts each of 37 test digits once."""
    common = [
        "--model",
        "mae",
        "--dataset",
        idx_dataset,
        "--max_train_steps",
        "8",
        "--learning_rate",
        "2e-3",
        "--config_overrides",
        TINY_MAE_FLAG,
        "--max_eval_samples",
        "37",
        "--per_device_eval_batch_size",
        "8",
        "--seed",
        "3",
    ]
    two = tmp_path / "two"
    launch = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
    ]
    result = _run(
        [*launch, SCRIPT, *common, "--per_device_train_batch_size", "4", "--output_dir", str(two)],
        ACCELERATE_USE_CPU="1",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    train = json.loads((two / "train_results.json").read_text())
    assert train["num_processes"] == 2 and train["total_train_batch_size"] == 8
    assert train["command"].startswith("accelerate launch --num_processes 2")
    two_metrics = json.loads((two / "eval_results.json").read_text())
    assert two_metrics["num_samples"] == 37

    # The 1-process reference, in this process, on the same data.
    one = tmp_path / "one"
    config = TrainingConfig(
        model="mae",
        dataset=idx_dataset,
        max_train_steps=8,
        learning_rate=2e-3,
        config_overrides=TINY_MAE,
        max_eval_samples=37,
        per_device_eval_batch_size=8,
        seed=3,
        per_device_train_batch_size=8,
    )
    one_metrics = training_function(config, RunArgs(output_dir=str(one)), data=load_image_dataset(idx_dataset))["eval"]
    assert one_metrics["num_samples"] == 37
    # Same samples, same per-sample masks, gradients averaged over the same global batch: only float summation
    # order differs (gloo all-reduce, thread count).
    for key in ("loss", "psnr", "ssim", "psnr_masked", "psnr_input"):
        assert two_metrics[key] == pytest.approx(one_metrics[key], rel=1e-4), key
    # Weights: Adam divides by sqrt(v), so parameters with near-zero gradients amplify rounding differences; the
    # tolerance is relative to how far training moved the weights: the runs differ by < 1% of that distance.
    from transformers import ViTMAEForPreTraining

    from mae_hf import build_mae

    init = build_mae("mnist", seed=3, **TINY_MAE).state_dict()
    a, b = (ViTMAEForPreTraining.from_pretrained(d).state_dict() for d in (two, one))
    keys = list(init)
    moved = torch.cat([(b[k] - init[k]).flatten() for k in keys]).norm()
    apart = torch.cat([(a[k] - b[k]).flatten() for k in keys]).norm()
    assert moved > 0.1, "training did not move the weights"
    assert apart / moved < 1e-2, f"2-process weights differ by {apart / moved:.2%} of the training update"


@pytest.mark.slow
def test_bad_argument_exits_2_with_a_message_from_the_script(tmp_path):
    out = tmp_path / "never"
    result = _run(
        [sys.executable, SCRIPT, "--model", "dae", "--learning_rate", "-1", "--output_dir", str(out)], timeout=120
    )
    assert result.returncode == 2 and "--learning_rate must be a positive number" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--model", "vae"], "invalid choice: 'vae'"),
        (["--model", "dae", "--learning_rate", "-1"], "--learning_rate must be a positive number"),
        (["--model", "mae", "--mask_ratio", "1.0"], "--mask_ratio must be in [0, 1)"),
        (["--model", "mae", "--mask_ratio", "-0.5"], "--mask_ratio must be in [0, 1)"),
        (["--model", "mae", "--preset", "imagenet"], "Unknown MAE preset 'imagenet'"),
        (["--model", "dae", "--checkpointing_steps", "often"], "--checkpointing_steps must be a positive integer"),
        (["--model", "dae", "--resume_from_checkpoint", "/no/such/dir"], "is not a checkpoint folder"),
        (["--model", "dae", "--config_overrides", "hidden_channels"], "is not key=value"),
    ],
)
def test_bad_arguments_exit_2_before_any_work(tmp_path, capsys, flags, message):
    from mae_hf.training.arguments import parse_args

    with pytest.raises(SystemExit) as exc:
        parse_args([*flags, "--output_dir", str(tmp_path / "never")])
    assert exc.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_unknown_dataset_exits_2_before_any_work(tmp_path, capsys):
    from mae_hf.cli import main

    out = tmp_path / "never"
    assert main(["train", "--model", "dae", "--dataset", "no_such_source", "--output_dir", str(out)]) == 2
    assert "Unknown dataset source 'no_such_source'" in capsys.readouterr().err
    assert not out.exists()


def test_help_documents_every_flag(capsys):
    from mae_hf.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    flags = [
        "--output_dir",
        "--num_train_epochs",
        "--max_train_steps",
        "--per_device_train_batch_size",
        "--per_device_eval_batch_size",
        "--learning_rate",
        "--weight_decay",
        "--num_warmup_steps",
        "--lr_scheduler_type",
        "--seed",
        "--gradient_accumulation_steps",
        "--checkpointing_steps",
        "--resume_from_checkpoint",
        "--with_tracking",
        "--report_to",
        "--push_to_hub",
        "--hub_model_id",
        "--hub_token",
        "--model",
        "--dataset",
        "--preset",
        "--mask_ratio",
        "--noise_factor",
        "--mixed_precision",
    ]
    for flag in flags:
        entry = re.search(rf"^  {flag}\b.*\n(?: {{10,}}.*\n)*", text, flags=re.MULTILINE)
        assert entry and len(entry.group(0).split()) > 4, f"{flag} is not documented"
