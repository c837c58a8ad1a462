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
    assert "holds at 240,000–1,200,000 (3 seeds at 240,000, 1 seed at 600,000–1,200,000)" in answers["H1"]
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
    assert "for the shipped models," in answers["H3"]
    assert "for these models," in claim_answers(small_metrics(15.0), models="these models")["H3"]


def budget(seen: int, seeds: list[int], verdict: str, measures: dict[str, str]) -> dict:
    cells = {"vit_mask": {"silhouette": {"estimate": 0.2}}, "cnn_noise": {"silhouette": {"estimate": 0.1}}}
    return {
        "name": f"b{seen}",
        "images_seen": seen,
        "seeds": seeds,
        "summary": cells,
        "verdicts": {
            "H1": {"claim": "tighter", "verdict": verdict, "measures": {m: {"verdict": v} for m, v in measures.items()}}
        },
    }


def test_a_study_budget_names_its_seeds_and_keeps_the_json_verdict():
    study = {
        "n_images": 1000,
        "settings": {"n": 1000},
        "budgets": [
            budget(12_032, [0, 1, 2], "does not hold", {"silhouette": "reversed", "tsne_radius": "reversed"}),
            budget(1_200_000, [0], "mixed", {"silhouette": "holds", "tsne_radius": "not shown"}),
        ],
    }
    sentence = claim_answers(study=study)["H1"]
    assert "does not hold at 12,032 images seen (3 seeds) and is mixed at 1,200,000 (1 seed)" in sentence
    assert "at 1,200,000 it holds on every measure but t-SNE radius (the study's measure) (not shown)" in sentence
    assert "silhouette: MAE 0.200, DAE 0.100" in sentence
    study["budgets"] = study["budgets"][:1]
    assert (
        "does not hold at 12,032 images seen (3 seeds); at 12,032 it is reversed on every measure"
        in (claim_answers(study=study)["H1"])
    )
    assert "one training budget, 12,032 images seen" in answer_markdown(study=study)


def test_nothing_to_answer_from_is_an_error():
    with pytest.raises(ValueError, match="metrics.json"):
        claim_answers()


def test_mae_hf_answer_rewrites_only_the_readme_block(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{ANSWER_START}\nstale\n{ANSWER_END}\n\nafter\n")
    metrics, study = tmp_path / "m.json", tmp_path / "s.json"
    metrics.write_text(json.dumps(small_metrics(19.0)))
    study.write_text(
        json.dumps({"n_images": 10, "budgets": [budget(60_000, [0, 1], "holds", {"silhouette": "holds"})]})
    )
    args = ["answer", "--metrics", str(metrics), "--study", str(study)]
    assert main([*args, "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n\n") and text.endswith(f"{ANSWER_END}\n\nafter\n")
    assert "stale" not in text and "holds at 60,000 images seen (2 seeds)" in text
    capsys.readouterr()
    assert main(args) == 0 and capsys.readouterr().out in text
    assert replace_answer_block(text, "X\n") == "# Title\n\nbefore\n\nX\n\nafter\n"
    readme.write_text("no markers\n")
    assert main([*args, "--readme", str(readme)]) == 2
