import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from mae_hf import DAEConfig, DAEModel, build_mae
from mae_hf.cli import main
from mae_hf.labels import MEASURE_LABELS
from mae_hf.loading import load_dae, load_mae
from mae_hf.pipeline import STAGES, AnalysisResult, DataSettings, ReportSettings, to_jsonable
from mae_hf.report import make_report
from mae_hf.report.document import report_document
from mae_hf.report.writer import report_files, stage_progress
from mae_hf.tables import TWO_MODELS, reconstruction_table, verdict_summary, verdict_table

from .conftest import TINY_MAE

ROOT = Path(__file__).resolve().parents[1]

KEYS = (
    "psnr",
    "ssim",
    "psnr_masked",
    "psnr_input",
    "tsne_radius",
    "original_radius",
    "scale_free_radius",
    "silhouette",
    "trustworthiness",
    "knn_accuracy",
    "linear_probe_accuracy",
    "raw_pixels",
    "near_zero_fraction",
    "rollout",
    "mae_masked_flat",
    "mae_cls",
    "mae_mean",
    "verdicts",
    "H1",
    "H2",
    "H3",
    "timings_s",
)


def keys_of(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from keys_of(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from keys_of(v)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    DAEModel(DAEConfig()).save_pretrained(root / "dae")
    build_mae("mnist", seed=0, **TINY_MAE).save_pretrained(root / "mae")
    return root


def test_missing_or_wrong_model_folders(models, tmp_path):
    with pytest.raises(ValueError, match="not a local folder"):
        load_dae(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="must hold config.json"):
        load_mae(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="holds a 'vit_mae' model"):
        load_dae(str(models / "mae"))
    with pytest.raises(ValueError, match="holds a 'conv_dae' model"):
        load_mae(str(models / "dae"))
    with pytest.raises(ValueError, match="HF_HUB_OFFLINE=1"):
        load_dae("nobody-here/no-such-model")  # offline in tests


def test_cli_report_missing_folder_exits_2(models, tmp_path, caplog):
    code = main(
        ["report", "--dae", str(tmp_path / "missing"), "--mae", str(models / "mae"), "--out", str(tmp_path / "r")]
    )
    assert code == 2 and "not a local folder" in caplog.text


def progress_lines(err: str) -> list[str]:
    """What a terminal shows, one entry per redraw of a line (tqdm redraws with \\r)."""
    return [s.strip() for s in re.split(r"[\r\n]", err) if s.strip()]


def test_progress_draws_each_stage_once(capsys):
    with stage_progress(len(STAGES)) as on_stage:
        for i, name in enumerate(STAGES):
            on_stage(name, i, len(STAGES))
    lines = progress_lines(capsys.readouterr().err)
    for name in STAGES:
        assert sum(line.endswith(name.replace("_", " ") + "]") for line in lines) == 1, (name, lines)
    assert sum("100%" in line for line in lines) == 1, lines


@pytest.mark.slow
def test_cli_report_prints_each_line_once_and_runs_the_scorecard_only_when_asked(models, tmp_path, capsys, caplog):
    args = ["report", "--dae", str(models / "dae"), "--mae", str(models / "mae"), "--n", "60", "--n_train", "120"]
    assert main([*args, "--no_cache", "--out", f"{tmp_path}/r/"]) == 0
    out, err = capsys.readouterr()
    assert f"{tmp_path}/r/report.md" in out and "//" not in out
    assert (out + caplog.text).count("Report written") == 1
    lines = progress_lines(err)
    for name in STAGES:
        assert sum(line.endswith(name.replace("_", " ") + "]") for line in lines) == 1, (name, lines)
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert "scorecard" not in metrics and not metrics["settings"]["scorecard"]

    assert main([*args, "--no_cache", "--no_progress", "--scorecard", "--out", str(tmp_path / "s")]) == 0
    metrics = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert metrics["scorecard"]["n_test"] == 60 and metrics["scorecard"]["mae"]["sweep"]
    assert "## 5. Scorecard" in (tmp_path / "s" / "report.md").read_text()


@pytest.mark.slow
def test_report_on_tiny_models_writes_every_file_and_key(models, tmp_path):
    data, settings = DataSettings(n=60, n_train=120), ReportSettings(n_attention=8, n_show=4)
    out, cache = tmp_path / "report", tmp_path / "cache"
    res = make_report(
        {"dae": str(models / "dae"), "mae": str(models / "mae")},
        data,
        out,
        settings,
        cache_dir=cache,
        progress=False,
    )
    for name in report_files(res):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    missing = set(KEYS) - set(keys_of(metrics))
    assert not missing, missing
    assert metrics["settings"]["n"] == 60 and metrics["settings"]["n_train"] == 120
    assert set(metrics["latents"]) == {"raw_pixels", "dae", "mae_cls", "mae_mean", "mae_masked_flat"}
    assert metrics["attention"]["saliency"]["mae"]["max_in_masked_patches"] == 0.0
    html = (out / "report.html").read_text()
    assert (
        html.count("data:image/png;base64,") == sum(n.endswith(".png") for n in report_files(res))
        and 'src="http' not in html
    )
    md = (out / "report.md").read_text()
    assert "## Verdicts" in md and "tsne.png" in md
    assert len((out / "per_image.csv").read_text().splitlines()) == 1 + 4 * 60

    again = make_report(
        {"dae": str(models / "dae"), "mae": str(models / "mae")},
        data,
        tmp_path / "r2",
        settings,
        cache_dir=cache,
        progress=False,
    )
    assert again.metrics["cache"]["hits"] >= 3 and again.metrics["cache"]["misses"] == 0
    assert again.metrics["latents"] == res.metrics["latents"]

    # the typed result survives the one serialisation the cache (and the app) uses
    back = AnalysisResult.from_arrays(res.to_arrays())
    assert back.metrics["latents"] == json.loads(json.dumps(to_jsonable(res.metrics["latents"])))
    np.testing.assert_array_equal(back.per_image["mae_mask"]["psnr"], res.per_image["mae_mask"]["psnr"])
    np.testing.assert_array_equal(back.latent_maps["dae"]["coordinates"], res.latent_maps["dae"]["coordinates"])
    assert back.class_names == res.class_names and back.examples["original"].shape == (4, 1, 28, 28)


@pytest.fixture
def small_folder(tmp_path):
    """An imagefolder of 28×28 digits-like squares: 3 classes × 4 images in train/ and test/ (fast to load)."""
    import numpy as np
    from PIL import Image

    for split in ("train", "test"):
        for c in range(3):
            (tmp_path / "data" / split / str(c)).mkdir(parents=True)
            for i in range(4):
                img = np.zeros((28, 28), np.uint8)
                img[4 + c * 6 : 10 + c * 6, 4 + i : 20 + i] = 255
                Image.fromarray(img).save(tmp_path / "data" / split / str(c) / f"{i}.png")
    return str(tmp_path / "data")


def test_bad_data_rejected(models, tmp_path, small_folder):
    kwargs = dict(cache_dir=None, progress=False)
    dae, mae = str(models / "dae"), str(models / "mae")
    with pytest.raises(ValueError, match=r"--n 13 is larger than the 'test' split .* \(12 images\)"):
        make_report({"dae": dae, "mae": mae}, DataSettings(small_folder, "test", 13), tmp_path, **kwargs)
    with pytest.raises(ValueError, match="no split 'dev'"):
        make_report({"dae": dae, "mae": mae}, DataSettings(small_folder, "dev", 10), tmp_path, **kwargs)
    torch.manual_seed(0)
    DAEModel(DAEConfig(image_size=32)).save_pretrained(tmp_path / "dae32")
    build_mae("mnist", seed=0, image_size=32, **TINY_MAE).save_pretrained(tmp_path / "mae32")
    with pytest.raises(ValueError, match="images are 1x28x28 .* but the models take 1x32x32"):
        make_report(
            {"dae": str(tmp_path / "dae32"), "mae": str(tmp_path / "mae32")},
            DataSettings(small_folder, "test", 10),
            tmp_path,
            **kwargs,
        )
    with pytest.raises(ValueError, match="different sizes"):
        make_report(
            {"dae": dae, "mae": str(tmp_path / "mae32")}, DataSettings(small_folder, "test", 10), tmp_path, **kwargs
        )


@pytest.mark.slow
def test_the_scorecard_and_learning_curves_are_in_the_report(tmp_path, mnist):
    """A tiny MAE trained with every checkpoint kept: `mae-hf curve` scores each, the report draws them and holds
    the scorecard (classifiers, the mask-ratio sweep against the baselines)."""
    from datasets import DatasetDict

    from mae_hf.training import RunArgs, TrainingConfig, training_function

    data = DatasetDict(train=mnist["train"].select(range(64)), test=mnist["test"].select(range(32)))
    for model, overrides in (("mae", TINY_MAE), ("dae", {"hidden_channels": [8, 8, 4]})):
        config = TrainingConfig(
            model=model, config_overrides=overrides, num_train_epochs=3, per_device_train_batch_size=16
        )
        training_function(config, RunArgs(output_dir=str(tmp_path / model), checkpoints_total_limit=0), data=data)
        assert main(["curve", str(tmp_path / model), "--n", "40", "--n_train", "100"]) == 0
        rows = json.loads((tmp_path / model / "learning_curve.json").read_text())
        assert [r["checkpoint"] for r in rows] == ["epoch_0", "epoch_1", "epoch_2"]
        assert [r["images_seen"] for r in rows] == [64, 128, 192]
        assert all(0 <= r["knn"] <= 1 and 0 <= r["probe"] <= 1 for r in rows)
        # scored on the validation split of the 4,000 embedded training digits, fit on the rows outside it
        assert {(r["split"], r["n_scored"], r["n_fit"]) for r in rows} == {("validation", 40, 100)}
    out = tmp_path / "report"
    make_report(
        {"dae": str(tmp_path / "dae"), "mae": str(tmp_path / "mae")},
        DataSettings(n=40, n_train=100, scorecard_n=120),
        out,
        ReportSettings(n_attention=8, n_show=4, scorecard=True),
        cache_dir=None,
        progress=False,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["n"] == 40 and metrics["scorecard"]["n_test"] == 120  # figures on 40, scores on 120
    assert "On the first 120 test digits" in (out / "report.md").read_text()
    sweep = metrics["scorecard"]["mae"]["sweep"]
    assert [r["mask_ratio"] for r in sweep][:2] == [0.1, 0.2] and all("margin" in r for r in sweep)
    assert set(metrics["scorecard"]["raw_pixels"]["classifiers"]["train"]) == {"knn", "probe"}
    report = (out / "report.md").read_text()
    assert (out / "learning_curves.png").is_file() and "## 6. Learning curves" in report
    assert "scored on the first 40 images of the training set's validation split" in report


def summary(mean: float, n: int = 2000) -> dict:
    return {"mean": mean, "std": 1.0, "n": n}


def test_the_reconstruction_table_names_the_digits_it_covers():
    """The card scores all 10,000 test digits, the report and the app the first --n: each row says which."""
    cell = {"psnr": summary(18.58), "ssim": summary(0.75), "psnr_input": summary(11.0), "psnr_masked": summary(17.4)}
    table = {"mae": {"mask": cell, "noise": cell}, "dae": {"mask": cell, "noise": cell}}
    headers, rows = reconstruction_table(table)
    assert len(rows) == 4 and all(len(row) == len(headers) for row in rows)
    assert all("first 2,000 test digits" in row[0] for row in rows)
    assert rows[0][1] == "18.58 ± 1.00"  # the number itself is unchanged


def test_verdict_tables_show_words_not_keys():
    """Every measure of the shipped report's verdicts has a label a person reads; its values are unchanged."""
    metrics = json.loads((ROOT / "docs" / "results" / "metrics.json").read_text())
    for verdict in metrics["verdicts"].values():
        _, rows = verdict_table(verdict)
        for row, r in zip(rows, verdict["measures"]):
            assert row[0] == MEASURE_LABELS[r["measure"]] and "_" not in row[0] + row[1] + row[4]
            assert row[2:4] == [f"{r['dae']:.4f}", f"{r['mae']:.4f}"]
        assert "_" not in verdict_summary(verdict)
    h1 = verdict_summary(metrics["verdicts"]["H1"])
    assert h1.startswith(TWO_MODELS) and "with MAE CLS token on every measure" in h1
    assert "Holds under" not in h1 and " of 18 " not in h1  # no vote over measures


def test_the_shipped_verdicts_say_they_compare_two_models_not_the_methods():
    """One trained model of each method has no seed-to-seed spread: the report's words say so, and its rows say
    whether these two models' numbers fall on the claimed side, not that a claim holds."""
    metrics = json.loads((ROOT / "docs" / "results" / "metrics.json").read_text())
    headers, rows = verdict_table(metrics["verdicts"]["H3"])
    assert headers[-1] == "These two models" and {r[-1] for r in rows} == {"yes", "no"}
    md = report_document(metrics, metrics["meta"]).markdown()
    verdicts = md.split("## Verdicts")[1].split("## 1.")[0]
    assert "a comparison of these two models, one trained model of each method (one seed each), not of the methods" in (
        verdicts
    )
    assert "one trained model of each, so this compares these two models" in verdicts
