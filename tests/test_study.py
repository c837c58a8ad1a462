"""`mae-hf study --quick`: the architecture x corruption grid end to end, resumable (mae_hf/study.py)."""

import json
import logging

import pytest

from mae_hf import cli
from mae_hf.analysis.factorial import CELLS, CLAIMS, MEASURES
from mae_hf.study import STUDY_FILES, StudySettings


@pytest.fixture(scope="module")
def quick_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    assert cli.main(["study", "--quick", "--seeds", "2", "--out", str(out)]) == 0
    return out


def test_quick_study_writes_the_grid_effects_and_verdicts(quick_study):
    for name in STUDY_FILES:
        assert (quick_study / name).stat().st_size > 0, name
    study = json.loads((quick_study / "study.json").read_text())
    assert set(study["summary"]) == set(CELLS) and study["seeds"] == [0, 1]
    for cell in CELLS:
        for measure in MEASURES:
            entry = study["summary"][cell][measure]
            assert len(entry["per_seed"]) == 2
            assert entry["ci_low"] <= entry["estimate"] + 1e-12 and entry["estimate"] <= entry["ci_high"] + 1e-12
    for row in study["effects"].values():
        assert set(row) == {"architecture", "corruption", "interaction", "study_contrast"}
        assert row["study_contrast"]["estimate"] == pytest.approx(
            row["architecture"]["estimate"] + row["corruption"]["estimate"], abs=1e-9
        )
    assert set(study["verdicts"]) == set(CLAIMS)
    for v in study["verdicts"].values():
        assert v["verdict"] in ("holds", "does not hold", "mixed")
        for r in v["measures"].values():
            assert r["verdict"] in ("holds", "reversed", "not shown")
    assert len(study["runs"]) == 8 and study["wall_time_s"]["training_total"] > 0
    text = (quick_study / "study.md").read_text()
    assert "## Two-way effects" in text and "### H1:" in text and "grid_measures.png" in text
    # every run is a model folder with a card saying how it was corrupted
    card = (quick_study / "runs" / "vit_noise" / "seed0" / "README.md").read_text()
    assert "masking is off" in card
    config = json.loads((quick_study / "runs" / "cnn_mask" / "seed1" / "config.json").read_text())
    assert config["corruption"] == "mask" and config["model_type"] == "conv_dae"


def test_rerun_skips_finished_work_and_resumes_an_interrupted_run(quick_study, caplog):
    before = json.loads((quick_study / "study.json").read_text())
    weights = quick_study / "runs" / "cnn_mask" / "seed1" / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    # an interrupted run: its checkpoint is there, the final folder is not
    interrupted = quick_study / "runs" / "vit_mask" / "seed1"
    for name in ("README.md", "eval_results.json", "model.safetensors"):
        (interrupted / name).unlink()
    with caplog.at_level(logging.INFO):
        assert cli.main(["study", "--quick", "--seeds", "2", "--out", str(quick_study)]) == 0
    log = caplog.text
    assert log.count("trained already, skipped") == 7
    assert "resuming" in log and (interrupted / "README.md").is_file()
    assert weights.stat().st_mtime_ns == mtime
    after = json.loads((quick_study / "study.json").read_text())
    assert after["summary"] == before["summary"] and after["effects"] == before["effects"]


def test_other_settings_into_the_same_folder_are_refused(quick_study, caplog):
    assert cli.main(["study", "--quick", "--seeds", "2", "--epochs", "2", "--out", str(quick_study)]) == 2
    assert "trained with other settings (num_train_epochs differ)" in caplog.text
    assert "use a new --out folder" in caplog.text


def test_bad_study_settings_name_the_flag(tmp_path, caplog):
    assert cli.main(["study", "--seeds", "0", "--out", str(tmp_path / "s")]) == 2
    assert "--seeds must be >= 1" in caplog.text
    with pytest.raises(Exception, match="n_boot"):
        StudySettings(n_boot=0).validate()
