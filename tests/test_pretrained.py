"""The bundled models (pretrained/): they load with plain transformers, their cards never lie, and the MAE is good.

Every number a card states is recomputed here from the shipped weights on the test split.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from transformers import AutoModel, ViTMAEForPreTraining

from mae_hf import dataset_to_tensors
from mae_hf.cards import card_code_blocks
from mae_hf.scorecard import classifier_scores, mask_ratio_sweep
from mae_hf.training import evaluate, evaluation_dataloader

REPO = Path(__file__).resolve().parent.parent
PRETRAINED = REPO / "pretrained"
FOLDERS = {"dae": PRETRAINED / "dae-mnist", "mae": PRETRAINED / "mae-mnist"}
# The Fashion-MNIST pair, trained with the same recipes (docs/RESULTS_FASHION.md).
FASHION = {"dae": PRETRAINED / "dae-fashion", "mae": PRETRAINED / "mae-fashion"}
SHARED_FASHION = REPO.parent / "shared" / "fashion-mnist"  # its IDX files, where this machine has them


def test_shipped_folders_are_complete_and_small():
    total = 0
    for kind, folder in [*FOLDERS.items(), *FASHION.items()]:
        names = {p.name for p in folder.iterdir() if p.is_file()}
        assert {"config.json", "model.safetensors", "README.md", "eval_results.json", "training_args.json"} <= names
        if kind == "dae":
            assert {"configuration_dae.py", "modeling_dae.py"} <= names
        total += sum(
            p.stat().st_size
            for p in folder.rglob("*")
            if p.is_file()
            and not any(part.startswith(("step_", "epoch_", "runs", ".git")) for part in p.relative_to(folder).parts)
        )
        tracked = subprocess.run(["git", "ls-files", str(folder)], cwd=REPO, capture_output=True, text=True).stdout
        assert "step_" not in tracked and "epoch_" not in tracked and "runs/" not in tracked
    assert total <= 20 * 2**20, f"bundled models take {total / 2**20:.1f} MB (limit 20 MB)"


def _card_metrics(folder: Path) -> dict[str, float]:
    """The card's evaluation metrics (the readouts' accuracies, which `mae-hf readout` measured and kept in the
    folder, are checked against that file by test_card_readouts_are_the_folders_kept_readouts)."""
    card = ModelCard.load(folder / "README.md")
    results = [r for r in card.data.eval_results if r.task_type != "image-classification"]
    assert results, "the card has no model-index"
    return {r.metric_type: r.metric_value for r in results}


@pytest.mark.parametrize("folder", [*FOLDERS.values(), *FASHION.values()], ids=lambda f: f.name)
def test_card_readouts_are_the_folders_kept_readouts(folder):
    """The shipped cards' field-protocol accuracies are the ones `mae-hf readout` kept in the folder (measured on
    the 60,000 training and 10,000 test images of the model's dataset; about 40-60 min on 2 cores, so not measured
    again here), and the Fashion-MNIST models are configured for clothing pictures."""
    from mae_hf.analysis.readout import READOUT_MEASURES
    from mae_hf.cards import READOUT_FILE

    kept = json.loads((folder / READOUT_FILE).read_text())
    assert kept["settings"]["n_train"] == 60000 and kept["settings"]["n_test"] == 10000
    card = ModelCard.load(folder / "README.md")
    stated = [r.metric_value for r in card.data.eval_results if r.task_type == "image-classification"]
    assert sorted(stated) == sorted(round(kept["model"]["accuracy"][m], 6) for m in READOUT_MEASURES)
    if folder in FASHION.values():
        assert json.loads((folder / "config.json").read_text())["dataset_profile"] == "clothing"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dae", "mae"])
def test_card_metrics_match_the_shipped_weights(kind, mnist):
    folder = FOLDERS[kind]
    stated = _card_metrics(folder)
    assert {"loss", "psnr", "ssim"} <= set(stated)
    model = (
        AutoModel.from_pretrained(folder) if kind == "dae" else ViTMAEForPreTraining.from_pretrained(folder)
    ).eval()
    eval_seed = json.loads((folder / "training_args.json").read_text()).get("eval_seed", 0)
    measured = evaluate(model, evaluation_dataloader(mnist["test"], model), seed=eval_seed)
    assert measured["num_samples"] == len(mnist["test"]) == 10000  # the official test set, all of it
    for key, value in stated.items():
        assert measured[key] == pytest.approx(value, rel=1e-4, abs=1e-5), (key, measured[key], value)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dae", "mae"])
def test_fashion_card_metrics_match_the_shipped_weights(kind):
    """The same for the Fashion-MNIST pair, on Fashion-MNIST's official test set (its IDX files; this machine's
    `../shared/fashion-mnist`, which a checkout elsewhere may not have)."""
    from mae_hf.data import load_image_dataset

    if not SHARED_FASHION.is_dir():
        pytest.skip(f"needs Fashion-MNIST's IDX files in {SHARED_FASHION}")
    folder = FASHION[kind]
    stated = _card_metrics(folder)
    model = (
        AutoModel.from_pretrained(folder) if kind == "dae" else ViTMAEForPreTraining.from_pretrained(folder)
    ).eval()
    test = load_image_dataset(str(SHARED_FASHION))["test"]
    measured = evaluate(model, evaluation_dataloader(test, model), seed=0)
    assert measured["num_samples"] == 10000
    for key, value in stated.items():
        assert measured[key] == pytest.approx(value, rel=1e-4, abs=1e-5), (key, measured[key], value)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dae", "mae"])
def test_card_snippet_runs_without_mae_hf(kind, tmp_path):
    blocks = card_code_blocks(ModelCard.load(FOLDERS[kind] / "README.md"))
    script = 'import sys\nsys.modules["mae_hf"] = None  # any import of mae_hf now fails\n' + blocks[0]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]


def _studys_own_models() -> dict:
    """The study's own trained models on the official test set, as `mae-hf convert-study` measured them
    (docs/results/study_checkpoints.json): 5-NN and probe fit on the 4,000 embedded training digits, masked-region
    PSNR at 0.75 and PSNR from noise 0.5 averaged over the test digits."""
    measured = json.loads((REPO / "docs" / "results" / "study_checkpoints.json").read_text())["protocols"]["study"]
    mae, dae = measured["mae"], measured["dae"]
    return {
        "mae": {**mae["classifiers"]["train"], "psnr_masked": mae["psnr_masked_0.75"]},
        "dae": {**dae["classifiers"]["train"], "psnr": dae["psnr_noisy_0.5"]},
    }


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dae", "mae"])
def test_the_bundled_models_beat_the_studys_own_on_the_official_test_set(kind, mnist):
    """Issue 14's floor: on all 10,000 official test digits, each shipped model beats the study's trained model of
    its kind on 5-NN, linear probe and its reconstruction PSNR (the card's, which the test above recomputes); the MAE's
    probe also beats the raw pixels'."""
    model = (
        AutoModel.from_pretrained(FOLDERS[kind])
        if kind == "dae"
        else ViTMAEForPreTraining.from_pretrained(FOLDERS[kind])
    ).eval()
    train, test = dataset_to_tensors(mnist["train"]), dataset_to_tensors(mnist["test"])
    assert len(test[0]) == 10000
    scores = classifier_scores(model, train, test) | _card_metrics(FOLDERS[kind])
    for key, floor in _studys_own_models()[kind].items():
        assert scores[key] > floor, (key, scores[key], floor)
    if kind == "mae":
        assert scores["probe"] > classifier_scores(None, train, test)["probe"]


@pytest.mark.slow
def test_the_mae_beats_both_baselines_by_3_db_at_every_ratio_the_app_offers(mnist):
    """At every mask ratio the app's slider offers (in steps of 0.1 and its two ends), the MAE's masked-region PSNR,
    pooled over the first 1,000 test digits, is at least 3 dB above predicting black and above predicting the
    training digits' mean image."""
    from mae_hf.app.tabs import MASK_RATIO_RANGE

    model = ViTMAEForPreTraining.from_pretrained(FOLDERS["mae"]).eval()
    train_x, _ = dataset_to_tensors(mnist["train"])
    test_x, _ = dataset_to_tensors(mnist["test"], n=1000)
    low, high = MASK_RATIO_RANGE
    ratios = sorted({low, high, *[r / 10 for r in range(1, 10) if low <= r / 10 <= high]})
    rows = mask_ratio_sweep(model, test_x, train_x.mean(0, keepdim=True), ratios)
    short = [(r["mask_ratio"], round(r["margin"], 2)) for r in rows if r["margin"] < 3.0]
    assert not short, f"margin over the better baseline below 3 dB at {short}"


@pytest.mark.slow
def test_the_card_the_report_and_the_app_give_the_same_numbers(mnist, tmp_path):
    """One evaluation engine: on the same first test digits, seed and corruption, the card's evaluation (the
    training loop's `evaluate`), `mae-hf report`'s metrics.json and the app's /metrics agree exactly."""
    from gradio_client import Client

    from mae_hf.pipeline import DataSettings, ReportSettings
    from mae_hf.report import make_report
    from mae_hf.tables import markdown_table, reconstruction_table

    n, n_train = 200, 300
    make_report(
        {"dae": str(FOLDERS["dae"]), "mae": str(FOLDERS["mae"])},
        DataSettings("mnist", "test", n, n_train),
        tmp_path / "report",
        ReportSettings(n_attention=8, n_show=4, scorecard=False),
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    reconstruction = metrics["reconstruction"]
    for kind, corruption in (("dae", "noise"), ("mae", "mask")):
        model = (
            AutoModel.from_pretrained(FOLDERS[kind])
            if kind == "dae"
            else ViTMAEForPreTraining.from_pretrained(FOLDERS[kind])
        ).eval()
        eval_seed = json.loads((FOLDERS[kind] / "training_args.json").read_text()).get("eval_seed", 0)
        assert eval_seed == metrics["settings"]["seed"] == 0
        card = evaluate(model, evaluation_dataloader(mnist["test"], model, max_samples=n), seed=eval_seed)
        assert card["num_samples"] == n
        for key in ("psnr", "ssim", "psnr_input") + (("psnr_masked",) if kind == "mae" else ()):
            assert reconstruction[kind][corruption][key]["mean"] == pytest.approx(card[key], rel=1e-6, abs=1e-7), (
                kind,
                key,
            )

    # the app, launched as a user launches it, on the same digits
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(
        os.environ, MAE_HF_CACHE=str(tmp_path / "app-cache"), MAE_HF_APP_N=str(n), MAE_HF_APP_N_TRAIN=str(n_train)
    )
    log = tmp_path / "app.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "app.py", "--dae", str(FOLDERS["dae"]), "--mae", str(FOLDERS["mae"]), "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 600
        while True:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:  # noqa: BLE001 - not serving yet
                time.sleep(0.2)
        while not client.predict(api_name="/analysis_status")["ready"]:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(1)
        table = client.predict(api_name="/metrics")[-1]
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert table == markdown_table(*reconstruction_table(reconstruction))


@pytest.mark.slow
def test_the_shipped_app_analysis_belongs_to_the_bundled_models(tmp_path):
    """pretrained/app-analysis-mnist.npz (written by `make report`) is what the app computes for the bundled MNIST
    models at its default settings: a first start uses it instead of computing the analysis."""
    from mae_hf.app.background import AnalysisSettings, BackgroundAnalysis
    from mae_hf.loading import load_models

    models = load_models({"dae": FOLDERS["dae"], "mae": FOLDERS["mae"]})
    settings = AnalysisSettings(cache_dir=str(tmp_path), shipped=str(FOLDERS["dae"].parent / "app-analysis-mnist.npz"))
    analysis = BackgroundAnalysis(models.models, settings).start()
    assert analysis.wait(600), analysis.status()
    assert analysis.source == "shipped", "run `make report` to write the app's analysis of the bundled models"
