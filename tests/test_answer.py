"""The answer in words (`mae_hf.answer`): true to the verdicts it is given, and the same in the README and at the top
of docs/RESULTS.md as what it writes from the committed results."""

import json
from pathlib import Path

import pytest

from mae_hf.answer import (
    ANSWER_END,
    ANSWER_START,
    answer_block,
    answer_markdown,
    claim_answers,
    replace_answer_block,
)
from mae_hf.cli import main

ROOT = Path(__file__).resolve().parents[1]


def committed() -> tuple[dict, dict]:
    return (
        json.loads((ROOT / "docs" / "results" / "metrics.json").read_text()),
        json.loads((ROOT / "docs" / "study" / "study.json").read_text()),
    )


def test_readme_and_results_page_carry_the_answer_the_results_give():
    """Regenerate with `make results-page` when this fails: the JSON changed, or the words did."""
    block = answer_block(*committed())
    readme = (ROOT / "README.md").read_text()
    assert readme.count(ANSWER_START) == 1 and block in readme
    title = (ROOT / "docs" / "results_notes.md").read_text().splitlines()[0]
    assert (ROOT / "docs" / "RESULTS.md").read_text().startswith(f"{title}\n\n{block}")


def test_the_committed_answer_quotes_the_deciding_numbers():
    answers = claim_answers(*committed())
    assert list(answers) == ["H1", "H1b", "H2", "H3"]
    assert "5-NN MAE 0.977, DAE 0.921" in answers["H1b"] and "10,000 test digits" in answers["H1b"]
    assert "at 600,000–1,200,000, 1 seed: not tested" in answers["H1"]  # the committed one-seed budgets
    assert "at 240,000 (3 seeds; MAE − DAE, 95% interval over seeds) it holds on" in answers["H1"]
    assert "yes relative to each layer's spread" in answers["H2"] and "no with an absolute threshold" in answers["H2"]
    assert "no on the same noisy digits (PSNR: MAE 11.36 dB, DAE 17.43 dB)" in answers["H3"]
    assert all(s.count(". ") == 0 and s.endswith(".") for s in answers.values())  # one sentence each


def row(measure: str, features: str, mae: float, dae: float, claim: str = "mae > dae") -> dict:
    holds = {"mae > dae": mae > dae, "mae < dae": mae < dae, "dae > mae": dae > mae}[claim]
    return {"measure": measure, "features": features, "mae": mae, "dae": dae, "claim": claim, "holds": holds}


def small_metrics(mae_psnr: float) -> dict:
    """A report whose MAE clusters better (H1 holds) and reconstructs as `mae_psnr` against the DAE's 17 dB."""
    h1 = [row("silhouette", "mae_mean", 0.30, 0.10), row("knn_accuracy", "mae_mean", 0.95, 0.90)]
    h3 = [
        {
            "measure": "psnr",
            "corruption": "MAE: masked, DAE: noisy",
            "mae": mae_psnr,
            "dae": 17.0,
            "holds": mae_psnr > 17,
        }
    ]
    return {
        "settings": {"n": 500},
        "meta": {"split": "test"},
        "verdicts": {"H1": {"claim": "clusters", "measures": h1}, "H3": {"claim": "reconstructs", "measures": h3}},
    }


def test_a_claim_that_holds_and_one_that_is_reversed():
    answers = claim_answers(small_metrics(mae_psnr=15.0))
    assert answers["H1"].startswith("**H1 — the MAE's features cluster by class more tightly than the DAE's:** for ")
    assert "yes with its mean-pooled tokens" in answers["H1"] and "first 500 test digits" in answers["H1"]
    assert "silhouette: MAE 0.300, DAE 0.100" in answers["H1"]
    assert "no under each model's own corruption (PSNR: MAE 15.00 dB, DAE 17.00 dB)" in answers["H3"]
    assert "yes under each model's own corruption" in claim_answers(small_metrics(mae_psnr=19.0))["H3"]
    assert "for the shipped models (one trained model of each, so this compares these two models" in answers["H3"]
    assert (
        "for these models (one trained model of each" in claim_answers(small_metrics(15.0), models="these models")["H3"]
    )


def budget(seen: int, seeds: list[int], verdict: str, measures: dict[str, tuple[str, float, float, float]]) -> dict:
    """A study budget as `mae_hf.study.aggregate` writes it: each measure's verdict and MAE − DAE with its interval
    (None without enough seeds)."""
    rows = {
        m: {"verdict": v, "n_seeds": len(seeds), "contrast": {"estimate": e, "ci_low": lo, "ci_high": hi}}
        for m, (v, e, lo, hi) in measures.items()
    }
    return {
        "name": f"b{seen}",
        "images_seen": seen,
        "seeds": seeds,
        "verdicts": {"H1": {"claim": "tighter", "verdict": verdict, "n_seeds": len(seeds), "measures": rows}},
    }


def test_a_study_answer_gives_budget_number_interval_and_seeds_and_tests_no_single_seed():
    study = {
        "n_images": 1000,
        "settings": {"n": 1000},
        "budgets": [
            budget(12_032, [0, 1, 2], "reversed", {"silhouette": ("reversed", -0.15, -0.2, -0.1)}),
            budget(
                240_000,
                [0, 1, 2],
                "mixed",
                {"silhouette": ("holds", 0.11, 0.076, 0.144), "tsne_radius": ("not shown", -6.1, -12.5, 0.2)},
            ),
            budget(1_200_000, [0], "not tested", {"silhouette": ("not tested", 0.13, None, None)}),
        ],
    }
    sentence = claim_answers(study=study)["H1"]
    assert "is reversed at 12,032 images seen and is mixed at 240,000 (3 seeds each)" in sentence
    assert (
        "at 240,000 (3 seeds; MAE − DAE, 95% interval over seeds) it holds on silhouette (+0.110 [+0.076, +0.144])"
        in (sentence)
    )
    assert "is not shown on t-SNE radius (-6.10 [-12.50, +0.20])" in sentence
    assert sentence.endswith("; at 1,200,000, 1 seed: not tested.") and "+0.130" not in sentence
    study["budgets"] = study["budgets"][2:]  # one seed only: numbers nowhere, no verdict
    assert (
        "in the study (ViT + masking against CNN + noise), at 1,200,000, 1 seed: not tested."
        in (claim_answers(study=study)["H1"])
    )
    assert "one training budget, 1,200,000 images seen" in answer_markdown(study=study)


def test_nothing_to_answer_from_is_an_error():
    with pytest.raises(ValueError, match="metrics.json"):
        claim_answers()


def test_mae_hf_answer_rewrites_only_the_readme_block(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{ANSWER_START}\nstale\n{ANSWER_END}\n\nafter\n")
    metrics, study = tmp_path / "m.json", tmp_path / "s.json"
    metrics.write_text(json.dumps(small_metrics(19.0)))
    study.write_text(
        json.dumps(
            {
                "n_images": 10,
                "budgets": [budget(60_000, [0, 1, 2], "holds", {"silhouette": ("holds", 0.1, 0.05, 0.15)})],
            }
        )
    )
    args = ["answer", "--metrics", str(metrics), "--study", str(study)]
    assert main([*args, "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n\n") and text.endswith(f"{ANSWER_END}\n\nafter\n")
    assert "stale" not in text and "holds at 60,000 images seen (3 seeds)" in text
    capsys.readouterr()
    assert main(args) == 0 and capsys.readouterr().out in text
    assert replace_answer_block(text, "X\n") == "# Title\n\nbefore\n\nX\n\nafter\n"
    readme.write_text("no markers\n")
    assert main([*args, "--readme", str(readme)]) == 2
