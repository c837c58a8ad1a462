"""Colour images end to end: a tiny 32×32×3 dataset made here trains both models (the ViT on the cifar10 preset it
is given by its size), and they go through the report, the study (`--quick`) and the app's reconstruct endpoint."""

import json
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import app
from mae_hf import cli
from mae_hf.study import STUDY_CELLS
from mae_hf.training import RunArgs, TrainingConfig, training_function

from .conftest import TINY_MAE

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 70, 230)}


@pytest.fixture(scope="module")
def rgb_dataset(tmp_path_factory) -> str:
    """An imagefolder of 32×32 RGB pictures, a coloured square on dark noise, its colour the class: 100 train and
    40 test pictures per class."""
    root = tmp_path_factory.mktemp("rgb-data")
    rng = np.random.default_rng(0)
    for split, n in (("train", 100), ("test", 40)):
        for name, colour in COLOURS.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                picture = rng.integers(0, 60, (32, 32, 3))
                top, left = rng.integers(2, 20, 2)
                side = rng.integers(6, 12)
                picture[top : top + side, left : left + side] = colour
                Image.fromarray(picture.astype(np.uint8)).save(folder / f"{i:03d}.png")
    return str(root)


@pytest.fixture(scope="module")
def rgb_models(rgb_dataset, tmp_path_factory) -> dict[str, str]:
    """The DAE and the MAE (a tiny ViT, cifar10 preset), trained one epoch each on the colour pictures."""
    root = tmp_path_factory.mktemp("rgb-models")
    common = dict(dataset=rgb_dataset, num_train_epochs=1, per_device_train_batch_size=32, max_train_samples=128)
    training_function(
        TrainingConfig(model="dae", config_overrides={"hidden_channels": [8, 8, 4]}, **common),
        RunArgs(output_dir=str(root / "dae")),
    )
    training_function(
        TrainingConfig(model="mae", preset="cifar10", config_overrides=dict(TINY_MAE), **common),
        RunArgs(output_dir=str(root / "mae")),
    )
    return {"dae": str(root / "dae"), "mae": str(root / "mae")}


def test_training_on_colour_images_names_the_rgb_profile(rgb_models):
    for name, folder in rgb_models.items():
        config = json.loads(Path(folder, "config.json").read_text())
        assert (config["num_channels"], config["image_size"], config["dataset_profile"]) == (3, 32, "rgb"), name
        assert json.loads(Path(folder, "eval_results.json").read_text())["psnr"] > 0


def test_the_report_reads_colour_models(rgb_models, rgb_dataset, tmp_path):
    out = tmp_path / "report"
    argv = ["report", "--dae", rgb_models["dae"], "--mae", rgb_models["mae"], "--dataset", rgb_dataset]
    assert cli.main([*argv, "--n", "60", "--n_train", "120", "--out", str(out), "--no_cache", "--no_progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["reconstruction"]["models"] == ["dae", "mae"]
    assert metrics["latents"]["dae"]["knn_accuracy"] >= 0 and "verdicts" in metrics
    assert (out / "reconstructions.png").stat().st_size > 0 and "## " in (out / "report.md").read_text()


def test_the_quick_study_runs_the_whole_grid_on_colour_images(rgb_dataset, tmp_path):
    out, results = tmp_path / "study", tmp_path / "results"
    argv = ["study", "--quick", "--seeds", "1", "--dataset", rgb_dataset, "--out", str(out), "--results", str(results)]
    assert cli.main([*argv, "--n", "60", "--n_train", "120"]) == 0
    study = json.loads((results / "study.json").read_text())
    assert len(study["runs"]) == len(STUDY_CELLS) and study["budgets"]  # every cell, the capacity control's too
    for cell in ("vit_mask", "vit_noise"):
        config = json.loads((out / "runs" / cell / "seed0" / "config.json").read_text())
        assert (config["image_size"], config["num_channels"], config["patch_size"]) == (32, 3, 4), cell
    assert json.loads((out / "runs" / "cnn_mask" / "seed0" / "config.json").read_text())["num_channels"] == 3


def test_the_apps_reconstruct_endpoint_takes_a_colour_picture(rgb_models, tmp_path):
    from gradio_client import Client, handle_file

    from mae_hf.app.service import ModelService
    from mae_hf.loading import load_models

    picture = tmp_path / "photo.png"
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 40, (90, 120, 3)).astype(np.uint8)
    photo[30:60, 40:80] = COLOURS["green"]
    Image.fromarray(photo).save(picture)
    service = ModelService.loaded(load_models(rgb_models), analysis=False)
    assert service.profile.name == "rgb"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = app.build_demo(service)
    app.serve(demo, port=port, block=False)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        answer = client.predict(handle_file(str(picture)), 0.75, 0.5, 0, "own", api_name="/reconstruct")
        assert len(answer) == 2 + 3 + 1  # DAE: input, output; MAE: input, output, pasted; the table
        shown = np.asarray(Image.open(answer[1]))
        assert shown.ndim == 3 and shown.shape[-1] >= 3  # a colour picture back, not a grayscale one
        assert not np.all(shown[..., 0] == shown[..., 1])
        assert "PSNR" in answer[-1]
    finally:
        demo.close()
