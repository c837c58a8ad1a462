"""`mae-hf study --quick`: the architecture x corruption grid at several budgets, end to end, resumable, and able to
skip runs whose committed analysis is all that is left (mae_hf/study/)."""

import copy
import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from transformers import ViTMAEConfig, ViTMAEForPreTraining

from mae_hf import cli
from mae_hf.analysis.factorial import CAPACITY_EFFECTS, CELLS, CLAIMS, EFFECTS, MEASURES
from mae_hf.analysis.readout import READOUT_MEASURES, readout_scores
from mae_hf.study import STUDY_CELLS, STUDY_FILES, StudySettings, aggregate, settings_from_args, study_markdown
from mae_hf.study.grid import readout_budget_names
from mae_hf.study.measure import ANALYSIS_VERSION, load_analysis, memory_bank, readout_measures

BUDGETS = ["step_4", "epoch_0", "epoch_1"]


@pytest.fixture(scope="module")
def quick_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    out, results = root / "runs-here", root / "results"
    assert cli.main(["study", "--quick", "--seeds", "2", "--out", str(out), "--results", str(results)]) == 0
    return out, results


def test_quick_study_writes_the_grid_at_every_budget(quick_study):
    out, results = quick_study
    for name in STUDY_FILES:
        assert (results / name).stat().st_size > 0, name
    study = json.loads((results / "study.json").read_text())
    assert [b["name"] for b in study["budgets"]] == BUDGETS and study["seeds"] == [0, 1]
    seen = [b["images_seen"] for b in study["budgets"]]
    assert seen == sorted(seen) and seen[0] == 4 * 32 and seen[-1] == 2 * 256
    for b in study["budgets"]:
        assert b["seeds"] == [0, 1] and set(b["summary"]) == set(STUDY_CELLS)  # the 2 × 2 and the capacity control
        readout = b["name"] in readout_budget_names(settings_from_args(quick=True))
        for cell in CELLS:
            assert readout or not set(READOUT_MEASURES) & set(b["summary"][cell])  # no readouts at the step budgets
            for measure in MEASURES if readout else set(MEASURES) - set(READOUT_MEASURES):
                e = b["summary"][cell][measure]
                assert len(e["per_seed"]) == 2 and e["ci_low"] <= e["estimate"] + 1e-12 <= e["ci_high"] + 2e-12
        for row in b["effects"].values():
            assert row["study_contrast"]["estimate"] == pytest.approx(
                row["architecture"]["estimate"] + row["corruption"]["estimate"], abs=1e-9
            )
            assert not any(e["significant"] for e in row.values())  # 2 seeds: nothing is tested
        assert set(b["verdicts"]) == set(CLAIMS) and not b["tested"]
        assert all(
            v["verdict"] == "not tested" and "2 seeds: not tested" in v["sentence"] for v in b["verdicts"].values()
        )
    for cell in CELLS:
        assert study["cells"][cell]["num_parameters"] > 0 and study["cells"][cell]["feature_size"] > 0
    for measures in study["timeline"].values():
        for t in measures.values():
            assert len(t["verdicts"]) == len(BUDGETS) and t["summary"]
    assert len(study["runs"]) == 2 * len(STUDY_CELLS) and study["wall_time_s"]["training_total"] > 0
    # the field's readouts: at the readout budgets of each run's analysis (not the step budgets), of the model at
    # initialisation per run, of the pixels
    vit = next(r for r in study["runs"] if r["cell"] == "vit_mask")
    assert (vit["num_parameters"], vit["feature_dim"]) == (
        sum(p.numel() for p in ViTMAEForPreTraining.from_pretrained(out / "runs" / "vit_mask" / "seed0").parameters()),
        ViTMAEConfig.from_pretrained(out / "runs" / "vit_mask" / "seed0").hidden_size,
    )
    assert all(set(r["readout_init"]) == set(READOUT_MEASURES) for r in study["runs"])
    assert set(READOUT_MEASURES) <= set(study["baseline_raw_pixels"])
    analysis = load_analysis(results / "runs" / "vit_mask-seed0.npz")
    assert readout_budget_names(settings_from_args(quick=True)) == ["epoch_0", "epoch_1"]
    for b in analysis["meta"]["budgets"]:
        want = set(READOUT_MEASURES) if b["name"].startswith("epoch_") else set()
        assert set(analysis["budgets"][b["name"]]["readout"]) == want
        assert set(b["readout_choices"]) == {k for k in want if k.startswith("linear_probe")}
    # a budget without readouts is judged on the other measures; the readouts' verdicts say "not measured" there
    h1b = study["timeline"]["H1b"]["knn_cosine_k20"]["verdicts"]
    assert h1b[0] == "not measured" and "not measured" not in h1b[1:]
    text = (results / "study.md").read_text()
    assert "## The claims, budget by budget" in text and "budget_curves.png" in text and "### H1:" in text
    assert "No budget has the 3 seeds a verdict needs yet" in text and "## The cells and their capacity" in text
    assert len(list((results / "runs").glob("*.npz"))) == 2 * len(STUDY_CELLS)  # the analyses, not the weights
    card = (out / "runs" / "vit_noise" / "seed0" / "README.md").read_text()
    assert "masking is off" in card


def test_a_rerun_skips_analysed_runs_even_without_their_weights(quick_study, caplog, tmp_path):
    out, results = quick_study
    before = json.loads((results / "study.json").read_text())
    fresh = tmp_path / "fresh-machine"  # a new machine: the committed analyses, none of the runs
    shutil.copytree(results, fresh)
    with caplog.at_level(logging.INFO):
        assert (
            cli.main(["study", "--quick", "--seeds", "2", "--out", str(tmp_path / "no-runs"), "--results", str(fresh)])
            == 0
        )
    assert caplog.text.count("analysed already, skipped") == 2 * len(STUDY_CELLS) and "training" not in caplog.text
    after = json.loads((fresh / "study.json").read_text())
    assert after["budgets"][-1]["summary"] == before["budgets"][-1]["summary"]


def test_a_run_analysed_by_an_older_version_is_trained_and_analysed_again(quick_study, caplog, tmp_path):
    """An analysis of an older version (before the field's readouts) counts on a page built without training; a
    study that trains measures it again in full, retraining it where its checkpoints are gone (a new machine)."""
    out, results = quick_study
    fresh = tmp_path / "fresh-machine"
    shutil.copytree(results, fresh)
    path = fresh / "runs" / "cnn_noise-seed0.npz"
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"])) | {"version": 2}
    np.savez_compressed(path, **(arrays | {"meta": np.array(json.dumps(meta))}))
    args = ["study", "--quick", "--seeds", "2", "--out", str(tmp_path / "no-runs"), "--results", str(fresh)]
    with caplog.at_level(logging.INFO):
        assert cli.main([*args, "--no_train"]) == 0
    assert caplog.text.count("analysed already, skipped") == 2 * len(STUDY_CELLS) and "training" not in caplog.text
    assert load_analysis(path)["meta"]["version"] == 2
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert cli.main(args) == 0
    assert "cnn_noise seed 0: analysed by an older version (2); training and analysing again" in caplog.text
    assert caplog.text.count("analysed already, skipped") == 2 * len(STUDY_CELLS) - 1
    again = load_analysis(path)
    assert again["meta"]["version"] == ANALYSIS_VERSION and set(READOUT_MEASURES) <= set(again["meta"]["readout_init"])
    assert again["meta"]["budgets"][0]["fingerprint"] == meta["budgets"][0]["fingerprint"]  # the same run, retrained


def test_some_cells_can_be_trained_elsewhere_and_joined_to_the_others_analyses(quick_study, caplog, tmp_path):
    """--cells: only those cells train and are analysed (the ViT cells on a GPU machine, say); the study's page
    still aggregates every cell from the analyses in --results."""
    out, results = quick_study
    fresh = tmp_path / "results"
    shutil.copytree(results, fresh)
    for cell in ("vit_mask", "cnn_mask"):
        (fresh / "runs" / f"{cell}-seed1.npz").unlink()
    args = ["study", "--quick", "--seeds", "2", "--out", str(tmp_path / "gpu-runs"), "--results", str(fresh)]
    with caplog.at_level(logging.INFO):
        assert cli.main([*args, "--cells", "vit_mask"]) == 0
    assert re.findall(r"\] (\w+) seed (\d): training", caplog.text) == [("vit_mask", "1")]
    assert (fresh / "runs" / "vit_mask-seed1.npz").is_file() and not (fresh / "runs" / "cnn_mask-seed1.npz").exists()
    study = json.loads((fresh / "study.json").read_text())  # seed 1 lacks cnn_mask: every budget has seed 0 alone
    assert all(b["seeds"] == [0] for b in study["budgets"])
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert cli.main([*args, "--cells", "cnn_mask,vit_mask"]) == 0
    assert re.findall(r"\] (\w+) seed (\d): training", caplog.text) == [("cnn_mask", "1")]
    study = json.loads((fresh / "study.json").read_text())
    assert all(b["seeds"] == [0, 1] and set(b["summary"]) == set(STUDY_CELLS) for b in study["budgets"])
    with caplog.at_level(logging.INFO):
        assert cli.main([*args, "--cells", "vit_mask,transformer"]) == 2
    assert "--cells: no study cell transformer; the cells are vit_mask" in caplog.text


def test_an_interrupted_run_resumes_from_its_checkpoint(quick_study, caplog):
    out, results = quick_study
    (results / "runs" / "vit_mask-seed1.npz").unlink()
    run = out / "runs" / "vit_mask" / "seed1"
    for name in ("README.md", "eval_results.json", "model.safetensors"):
        (run / name).unlink()
    shutil.rmtree(run / "epoch_1")  # it died during the last epoch
    with caplog.at_level(logging.INFO):
        assert cli.main(["study", "--quick", "--seeds", "2", "--out", str(out), "--results", str(results)]) == 0
    assert (
        "resuming" in caplog.text
        and (run / "README.md").is_file()
        and (results / "runs" / "vit_mask-seed1.npz").is_file()
    )


def test_later_seeds_can_stop_early_and_go_on_later(tmp_path, caplog):
    """--other_seeds_epochs: seed 1 trains only its first epoch (of the 2-epoch schedule); the last budget has seed 0
    alone and the page says so; a later invocation without it trains seed 1 on from its checkpoint and analyses only
    the budget it lacked."""
    out, results = tmp_path / "runs", tmp_path / "results"
    argv = ["study", "--quick", "--seeds", "2", "--out", str(out), "--results", str(results)]
    with caplog.at_level(logging.INFO):
        assert cli.main(argv + ["--other_seeds_epochs", "1"]) == 0
    trained = re.findall(r"\] (\w+) seed (\d): training", caplog.text)
    n = len(STUDY_CELLS)
    assert [int(seed) for _, seed in trained] == [1] * n + [0] * n  # the shorter runs first
    fastest_first = sorted(STUDY_CELLS, key=lambda c: 1 / STUDY_CELLS[c].images_per_s)
    assert [cell for cell, _ in trained[:n]] == fastest_first
    assert fastest_first.index("vit_mask") < fastest_first.index("vit_noise")
    study = json.loads((results / "study.json").read_text())
    assert [(b["name"], b["seeds"]) for b in study["budgets"]] == [
        ("step_4", [0, 1]),
        ("epoch_0", [0, 1]),
        ("epoch_1", [0]),
    ]
    seed1 = [r for r in study["runs"] if r["seed"] == 1]
    assert all(not r["complete"] and r["epochs_trained"] == 1 and r["train_runtime_s"] > 0 for r in seed1)
    assert not (out / "runs" / "vit_mask" / "seed1" / "README.md").exists()
    text = (results / "study.md").read_text()
    assert "seeds 0, 1: not tested" in text and "seed 0: not tested" in text and "1 of 2 (resumable)" in text
    from mae_hf.app.views import study_grid_markdown

    about = study_grid_markdown(results / "study.json")  # the About tab says which seeds each budget has
    assert "| seeds | 0, 1 | 0, 1 | 0 |" in about and "seed 0, fewer than a verdict needs (not tested)" in about
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert cli.main(argv) == 0
    # epoch_1 of each seed-1 run
    assert caplog.text.count("resuming") == n and caplog.text.count("analysed in") == n
    study = json.loads((results / "study.json").read_text())
    assert all(b["seeds"] == [0, 1] for b in study["budgets"]) and all(r["complete"] for r in study["runs"])
    with caplog.at_level(logging.INFO):
        assert cli.main(argv + ["--other_seeds_epochs", "0"]) == 2
    assert "--other_seeds_epochs must be >= 1" in caplog.text


def test_a_study_in_stages_gives_every_seed_the_early_budgets_first(tmp_path, caplog):
    """--stop_after_epochs: every run trains its first epoch; the early budgets have both seeds, the last none (it
    is left out); a later invocation trains every run on from its checkpoint."""
    out, results = tmp_path / "runs", tmp_path / "results"
    argv = ["study", "--quick", "--seeds", "2", "--out", str(out), "--results", str(results)]
    with caplog.at_level(logging.INFO):
        assert cli.main(argv + ["--stop_after_epochs", "1"]) == 0
    assert caplog.text.count("training (1 of 2 epochs)") == 2 * len(STUDY_CELLS)
    study = json.loads((results / "study.json").read_text())
    assert [(b["name"], b["seeds"]) for b in study["budgets"]] == [("step_4", [0, 1]), ("epoch_0", [0, 1])]
    assert not any(r["complete"] for r in study["runs"])
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert cli.main(argv) == 0
    assert caplog.text.count("resuming") == 2 * len(STUDY_CELLS)
    study = json.loads((results / "study.json").read_text())
    assert [b["name"] for b in study["budgets"]] == BUDGETS and all(r["complete"] for r in study["runs"])
    with caplog.at_level(logging.INFO):
        assert cli.main(argv + ["--stop_after_epochs", "0"]) == 2
    assert "--stop_after_epochs must be >= 1" in caplog.text


def test_other_settings_are_refused(quick_study, caplog):
    out, results = quick_study
    assert (
        cli.main(["study", "--quick", "--seeds", "2", "--epochs", "3", "--out", str(out), "--results", str(results)])
        == 2
    )
    assert "analysed with other settings" in caplog.text


def test_bad_study_settings_name_the_flag(tmp_path, caplog):
    assert cli.main(["study", "--seeds", "0", "--out", str(tmp_path / "s")]) == 2
    assert "--seeds must be >= 1" in caplog.text
    with pytest.raises(Exception, match="budget_epochs"):
        StudySettings(budget_epochs=[1, 4]).validate()


def test_the_about_tab_shows_the_verdicts_per_budget_or_says_why_not(quick_study, tmp_path):
    from mae_hf.app.views import study_grid_markdown

    _, results = quick_study
    text = study_grid_markdown(results / "study.json")
    assert "| claim | 128 | 256 | 512 |" in text and "**H1**" in text
    assert "| seeds | 0, 1 | 0, 1 | 0, 1 |" in text and "seeds 0, 1, fewer than a verdict needs (not tested)" in text
    assert "| parameters (feature size) |" in text
    assert "No study results yet" in study_grid_markdown(tmp_path / "missing.json")
    (tmp_path / "old.json").write_text(json.dumps({"cells": {}, "verdicts": {}}))
    assert "earlier version of the study" in study_grid_markdown(tmp_path / "old.json")


def test_an_analysis_is_committed_where_it_is_even_from_a_relative_path(tmp_path, monkeypatch, caplog):
    """`--commit` with `--results docs/study` (relative, as `make study` passes it): the file is committed."""
    import subprocess

    from mae_hf.study import commit_file

    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "t")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "t@example.org")
    repo = tmp_path / "repo"
    (repo / "docs" / "study" / "runs").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "--allow-empty", "-m", "start"], check=True)
    (repo / "docs" / "study" / "runs" / "vit_mask-seed1.npz").write_bytes(b"analysis")
    (repo / "unrelated.txt").write_text("staged elsewhere")
    subprocess.run(["git", "-C", str(repo), "add", "unrelated.txt"], check=True)
    monkeypatch.chdir(repo)
    with caplog.at_level(logging.INFO):
        commit_file(Path("docs/study/runs/vit_mask-seed1.npz"), "Study: the analysis of vit_mask seed 1")
    assert "Could not commit" not in caplog.text
    shown = subprocess.run(["git", "show", "--name-only", "--format=%s"], capture_output=True, text=True, check=True)
    assert "Study: the analysis of vit_mask seed 1" in shown.stdout
    assert "docs/study/runs/vit_mask-seed1.npz" in shown.stdout
    assert "unrelated.txt" not in shown.stdout  # only the analysis is committed


def test_a_cell_registered_from_a_test_is_trained_analysed_and_shown(tmp_path):
    """Cells are entries: one more (a wider CNN + noise, the kind of capacity control issue 26 adds), registered here
    alone, is trained, analysed at every budget, summarised and shown beside the four; the effects stay the 2×2's."""
    from mae_hf.study import StudyCell, register_cell

    register_cell(
        StudyCell("cnn_noise_wide", "wide CNN + noise", "dae", "noise", "cnn", 900, {"hidden_channels": [64, 32, 16]})
    )
    try:
        out, results = tmp_path / "runs", tmp_path / "results"
        assert cli.main(["study", "--quick", "--seeds", "1", "--out", str(out), "--results", str(results)]) == 0
    finally:
        del STUDY_CELLS["cnn_noise_wide"]
    config = json.loads((out / "runs" / "cnn_noise_wide" / "seed0" / "config.json").read_text())
    assert config["hidden_channels"] == [64, 32, 16]
    study = json.loads((results / "study.json").read_text())
    assert (
        len(study["runs"]) == len(STUDY_CELLS) + 1 and study["cells"]["cnn_noise_wide"]["label"] == "wide CNN + noise"
    )
    for b in study["budgets"]:
        assert set(b["summary"]) == set(STUDY_CELLS) | {"cnn_noise_wide"}
        assert set(b["effects"]["psnr"]) == set(EFFECTS) | set(CAPACITY_EFFECTS)
    assert "wide CNN + noise" in (results / "study.md").read_text()


def test_the_readouts_use_the_runs_training_images_as_memory_bank(mnist, tiny_dae):
    """The memory bank and the probes' training set are the images every run trained on (the first
    max_train_samples of the training split); the test images are the study's."""
    import torch

    from mae_hf.data import dataset_to_tensors
    from mae_hf.scorecard import features

    full_x, full_y = dataset_to_tensors(mnist["train"], n=200)
    data = {"x": full_x[:30], "y": full_y[:30], "full_train_x": full_x, "full_train_y": full_y}
    settings = StudySettings(max_train_samples=120)
    bank_x, bank_y = memory_bank(data, settings)
    assert torch.equal(bank_x, full_x[:120]) and torch.equal(bank_y, full_y[:120])
    got = readout_measures(tiny_dae, data, settings)
    want = readout_scores(
        features(tiny_dae, full_x[:120]), full_y[:120].numpy(), features(tiny_dae, data["x"]), data["y"].numpy()
    )
    assert got["accuracy"] == want["accuracy"] and got["n_train"] == 120 and got["n_validation"] == 20
    assert len(memory_bank(data, StudySettings())[0]) == 200  # max_train_samples None: the whole split
    with pytest.raises(ValueError, match="full_train"):
        memory_bank({"x": full_x}, settings)


def synthetic_analyses(seeds_per_budget: dict[str, int], n: int = 60) -> dict:
    """Analyses as `load_analysis` returns them, without training: budget `a` with its seeds, budget `b` with
    fewer. The ViT cells classify better; the near-zero fractions are the same at every seed (zero spread); every
    run also carries a scalar measure the factorial table does not list."""
    rng = np.random.default_rng(0)
    shift = {"vit_mask": 0.1, "vit_noise": 0.05, "cnn_mask": -0.05, "cnn_noise": 0.0}
    analyses = {}
    for seed in range(max(seeds_per_budget.values())):
        for cell in CELLS:
            names = [b for b, k in seeds_per_budget.items() if seed < k]
            budgets = {
                b: {
                    "per_image": {
                        "knn_accuracy": 0.8 + shift[cell] + 0.05 * rng.standard_normal(n),
                        "psnr": 15 + 10 * shift[cell] + rng.standard_normal(n),
                    },
                    "scalars": {
                        "near_zero_relative": 0.1 + shift[cell],
                        "knn20_accuracy": 0.85 + shift[cell] + 0.001 * rng.standard_normal(),
                    },
                }
                for b in names
            }
            meta = {"budgets": [{"name": b, "images_seen": 1000 * (i + 1)} for i, b in enumerate(names)]}
            analyses[seed, cell] = {"meta": meta, "budgets": budgets}
    return analyses


def synthetic_study(seeds_per_budget: dict[str, int]) -> dict:
    labels = np.arange(60) % 10
    study = aggregate(synthetic_analyses(seeds_per_budget), list(seeds_per_budget), labels)
    return study | {
        "settings": {
            "dataset": "mnist",
            "max_train_samples": None,
            "num_train_epochs": 2,
            "per_device_train_batch_size": 8,
            "learning_rate": {"vit": 1e-3, "cnn": 1e-2},
            "mask_ratio": 0.75,
            "noise_factor": 0.5,
            "n_train": 100,
        },
        "cells": {
            c: {
                "label": c,
                "architecture": c.split("_")[0],
                "num_parameters": 1000 if "vit" in c else 10,
                "feature_size": 128 if "vit" in c else 72,
            }
            for c in CELLS
        },
        "measures": {
            m: {"description": d, "higher_is": "better" if s > 0 else "tighter/lower better"}
            for m, (_, s, d) in MEASURES.items()
        },
        "runs": [],
        "n_images": 60,
        "wall_time_s": {"training_total": 0.0, "analysis_total": 0.0, "this_invocation": 0.0},
    }


def test_a_budget_with_one_seed_gets_numbers_and_no_verdict():
    study = synthetic_study({"a": 3, "b": 1})
    a, b = study["budgets"]
    assert a["tested"] and a["n_seeds"] == 3 and not b["tested"] and b["seeds"] == [0]
    assert all(v["verdict"] == "not tested" for v in b["verdicts"].values())
    assert all(not e["significant"] and e["ci_low"] is None for row in b["effects"].values() for e in row.values())
    assert b["verdicts"]["H1b"]["sentence"].startswith("At 2,000 images seen, 1 seed: not tested (MAE − DAE")
    knn = study["timeline"]["H1b"]["knn_accuracy"]
    assert knn["verdicts"][1] == "not tested" and "2,000 images: 1 seed, not tested" in knn["summary"]
    # a's 5-NN holds: its sentence has the budget, the number, the interval and the seeds
    row = a["verdicts"]["H1b"]["measures"]["knn_accuracy"]
    assert row["verdict"] == "holds" and "over 3 seeds: holds" in row["sentence"]
    assert f"{row['contrast']['estimate']:+.3f} [{row['contrast']['ci_low']:+.3f}," in row["sentence"]
    assert a["verdicts"]["H1b"]["sentence"].startswith("At 1,000 images seen (3 seeds; MAE − DAE, 95% interval")


def test_the_page_opens_with_the_answers_and_never_bolds_an_untested_or_zero_width_interval():
    study = synthetic_study({"a": 3, "b": 1})
    text = study_markdown(study)
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections[:3] == ["## The answer, claim by claim", "## The plan", "## The cells and their capacity"]
    answer = text.split("## The plan")[0]
    assert "**H1b:" in answer and "(3 seeds; MAE − DAE, 95% interval over seeds)" in answer
    assert "at 2,000, 1 seed: not tested" in answer
    assert "| `vit_mask` | vit_mask | 1,000 | 128 |" in text and "100× the parameters" in text
    assert "### 2,000 images seen (seed 0: not tested)" in text
    untested = text.split("### 2,000 images seen (seed 0: not tested)")[1].split("\n\n")[1]
    assert "**" not in untested  # one seed: nothing bold
    effects_a = text.split("### 1,000 images seen (seeds 0, 1, 2)")[1].split("\n\n")[1]
    zero_width = next(line for line in effects_a.splitlines() if line.startswith("| near_zero_relative |"))
    assert "**" not in zero_width  # the same at every seed: zero width, never significant
    assert "**" in next(line for line in effects_a.splitlines() if line.startswith("| knn_accuracy |"))
    assert "| knn20_accuracy |" in effects_a  # a measure read from the analyses, not from a fixed list


def test_the_committed_study_page_is_what_its_json_gives_and_tests_no_one_seed_budget():
    """Regenerate with `mae-hf study --no_train` (docs/STUDY.md: `make study`) when this fails."""
    root = Path(__file__).resolve().parents[1]
    study = json.loads((root / "docs" / "study" / "study.json").read_text())
    assert (root / "docs" / "study" / "study.md").read_text() == study_markdown(study)
    for b in study["budgets"]:
        if len(b["seeds"]) < 3:
            assert all(v["verdict"] == "not tested" for v in b["verdicts"].values())
            assert not any(e["significant"] for row in b["effects"].values() for e in row.values())
        for row in b["effects"].values():
            for e in row.values():
                assert not e["significant"] or e["ci_high"] > e["ci_low"]
    page = (root / "docs" / "STUDY.md").read_text()
    assert "600,000 images seen (seed 0: not tested)" in page and "1,200,000 images seen (seed 0: not tested)" in page
    assert "4,000-digit grid below" not in page and "0.01 × their layer's std" not in page


def test_the_capacity_control_is_a_vit_of_the_cnns_size_and_says_what_capacity_adds():
    """The capacity cells build a ViT within 5% of the CNN's parameter count; the grid works without them (the
    committed analyses predate them), and with them every verdict row carries the ViT-vs-CNN contrast at equal
    capacity and what the full ViT's capacity adds, each an interval over seeds."""
    from mae_hf.analysis.factorial import CAPACITY_CELLS
    from mae_hf.loading import count_parameters
    from mae_hf.training import build_model

    def trainable(model) -> int:  # the ViT's sin-cos position tables are frozen constants, not capacity
        return sum(p.numel() for p in model.parameters() if p.requires_grad)

    settings = StudySettings()
    models = {c: build_model(settings.training_config(c, 0, 28, 1), 28, 1) for c in STUDY_CELLS}
    sizes = {c: trainable(m) for c, m in models.items()}
    assert count_parameters(models["cnn_noise"]) == sizes["cnn_noise"] == 12785
    for cell in CAPACITY_CELLS:
        assert abs(sizes[cell] / sizes["cnn_noise"] - 1) < 0.05, sizes
        assert sizes["vit_mask"] > 50 * sizes[cell]

    labels = np.arange(60) % 10
    plain = aggregate(synthetic_analyses({"a": 3}), ["a"], labels)
    row = plain["budgets"][0]["verdicts"]["H1b"]["measures"]["knn_accuracy"]
    assert row["capacity"] is None and set(plain["budgets"][0]["summary"]) == set(CELLS)

    analyses = synthetic_analyses({"a": 3})
    for seed in range(3):  # the small ViT: as the CNN with masking, plus what its architecture adds at equal size
        for cell, like in zip(CAPACITY_CELLS, ("cnn_mask", "cnn_noise")):
            analyses[seed, cell] = copy.deepcopy(analyses[seed, like])
            analyses[seed, cell]["budgets"]["a"]["per_image"]["knn_accuracy"] += 0.02 * (seed + 1)
    study = aggregate(analyses, ["a"], labels)
    b = study["budgets"][0]
    assert set(b["summary"]) == set(CELLS) | set(CAPACITY_CELLS)
    row = b["verdicts"]["H1b"]["measures"]["knn_accuracy"]
    assert set(row["capacity"]) == set(CAPACITY_EFFECTS)
    assert row["capacity"]["small_vit_in_mask"]["estimate"] == pytest.approx(0.04)  # mean of 0.02, 0.04, 0.06
    assert row["capacity"]["small_vit_in_mask"]["n_seeds"] == 3
    assert "CNN-sized ViT − CNN under masking +0.040" in row["sentence"]
