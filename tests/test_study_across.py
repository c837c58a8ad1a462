"""Each claim of the study on several datasets: the verdict at the study's budget, where each measure starts to
hold, and whether the claim generalises (`mae_hf.across_datasets`, `mae-hf study-across`, the About tab)."""

import json
from pathlib import Path

from mae_hf import cli
from mae_hf.across_datasets import across_markdown, claim_across
from mae_hf.analysis.factorial import CLAIMS

ROOT = Path(__file__).resolve().parent.parent
SEEN = {"step_188": 12_032, "epoch_0": 60_000, "epoch_3": 240_000, "epoch_19": 1_200_000}


def _study(verdicts: dict[str, list[str]], seeds: list[int] | None = None) -> dict:
    """A study.json with the H1 measures' verdicts budget by budget (`{measure: [verdict per budget]}`); every other
    claim's measures are "not shown"; `seeds`: seeds per budget (default 3 everywhere)."""
    seeds = seeds or [3] * len(SEEN)
    budgets = []
    for i, (name, seen) in enumerate(SEEN.items()):
        per_claim = {}
        for cid, spec in CLAIMS.items():
            given = verdicts if cid == "H1" else {}
            measures = {
                m: {"verdict": given[m][i] if m in given else "not shown"}
                for m in spec["measures"]
                if m in given or cid != "H1"
            }
            if seeds[i] < 3:
                measures = {m: {"verdict": "not tested"} for m in measures}
            kinds = {r["verdict"] for r in measures.values()}
            per_claim[cid] = {
                "claim": spec["claim"],
                "verdict": kinds.pop() if len(kinds) == 1 else "mixed",
                "measures": measures,
            }
        budgets.append(
            {
                "name": name,
                "images_seen": seen,
                "seeds": list(range(seeds[i])),
                "tested": seeds[i] >= 3,
                "verdicts": per_claim,
            }
        )
    return {"settings": {"num_train_epochs": 20}, "budgets": budgets}


def test_a_claim_that_holds_on_both_datasets_generalises_and_says_from_which_budget():
    mnist = _study({"tsne_radius": ["reversed", "holds", "holds", "holds"], "silhouette": ["holds"] * 4})
    fashion = _study({"tsne_radius": ["not shown", "not shown", "holds", "holds"], "silhouette": ["holds"] * 4})
    h1 = claim_across({"MNIST": mnist, "Fashion-MNIST": fashion})[0]
    assert h1["claim"] == "H1"
    assert h1["datasets"]["MNIST"]["at_study_budget"] == "holds (1,200,000 images, 3 seeds)"
    assert h1["datasets"]["MNIST"]["holds_from"] == "silhouette: 12,032; t-SNE radius: 60,000"
    assert h1["datasets"]["Fashion-MNIST"]["holds_from"] == "silhouette: 12,032; t-SNE radius: 240,000"
    assert h1["sentence"].startswith("Generalises at 1,200,000 images seen: holds on every dataset on silhouette")


def test_a_claim_that_holds_on_one_dataset_only_says_where():
    mnist = _study({"tsne_radius": ["holds"] * 4, "silhouette": ["holds"] * 4})
    fashion = _study({"tsne_radius": ["holds"] * 4, "silhouette": ["reversed"] * 4})
    h1 = claim_across({"MNIST": mnist, "Fashion-MNIST": fashion})[0]
    assert h1["datasets"]["Fashion-MNIST"]["at_study_budget"].startswith("mixed: holds on 1 of 2 measures")
    assert h1["sentence"] == (
        "Partly at 1,200,000 images seen: holds on every dataset on t-SNE radius; on silhouette on MNIST only."
    )
    fashion = _study({"tsne_radius": ["reversed"] * 4, "silhouette": ["not shown"] * 4})
    h1 = claim_across({"MNIST": mnist, "Fashion-MNIST": fashion})[0]
    assert h1["sentence"].startswith("Does not generalise at 1,200,000 images seen: on silhouette on MNIST only")
    assert h1["datasets"]["Fashion-MNIST"]["holds_from"] == "holds on no measure at 1,200,000"


def test_budgets_without_three_seeds_and_missing_studies_give_no_verdict():
    # seeds 1 and 2 stopped after 4 epochs: the whole run is not tested, the largest tested budget is named
    mnist = _study({"tsne_radius": ["holds"] * 4}, seeds=[3, 3, 3, 1])
    row = claim_across({"MNIST": mnist, "Fashion-MNIST": None})[0]
    assert row["datasets"]["MNIST"]["at_study_budget"] == (
        "not tested (1,200,000 images: 1 seed); at 240,000, the largest tested: holds"
    )
    assert row["datasets"]["Fashion-MNIST"] == {
        "at_study_budget": "no results yet (no budget with every cell of the grid)",
        "holds_from": "—",
    }
    assert row["sentence"] == "Not answerable yet: Fashion-MNIST has no budget with the seeds a verdict needs."
    # both tested, but to different budgets: compared at the largest budget both have
    fashion = _study({"tsne_radius": ["holds", "holds", "reversed", "reversed"]}, seeds=[3, 3, 1, 1])
    row = claim_across({"MNIST": mnist, "Fashion-MNIST": fashion})[0]
    assert row["sentence"].startswith("Generalises at 60,000 images seen")
    text = across_markdown({"MNIST": mnist, "Fashion-MNIST": fashion})
    assert text.count("\n| **H") == len(CLAIMS) and "| MNIST: at the study's budget | MNIST: holds from |" in text
    assert "No study has run yet on MNIST and Fashion-MNIST." in across_markdown({"MNIST": None, "Fashion-MNIST": None})


def test_the_committed_studies_give_the_table_both_study_pages_open_with(tmp_path, capsys):
    assert cli.main(["study-across", f"MNIST={ROOT / 'docs/study/study.json'}", f"Other={tmp_path / 'no.json'}"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("## Does it generalise? Each claim on MNIST and Other")
    assert "| no results yet (no budget with every cell of the grid) | — |" in text and text.count("\n| **H") == len(
        CLAIMS
    )
    # the pages hold what the committed studies give (the Makefile's STUDY_ACROSS)
    studies = ["MNIST=docs/study/study.json", "Fashion-MNIST=docs/study-fashion/study.json"]
    assert cli.main(["study-across", *(s.replace("=", f"={ROOT}/") for s in studies)]) == 0
    table = capsys.readouterr().out
    assert "STUDY_ACROSS = $(VENV)/bin/mae-hf study-across " + " ".join(studies) in (ROOT / "Makefile").read_text()
    pages = [ROOT / "docs" / "STUDY.md", ROOT / "docs" / "STUDY_FASHION.md"]
    assert pages[0].is_file()
    for page in (p for p in pages if p.is_file()):  # the Fashion-MNIST page once its study has a budget
        assert table in page.read_text(), page.name
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert cli.main(["study-across", f"MNIST={bad}"]) == 2
    assert cli.main(["study-across", "docs/study/study.json"]) == 2  # no NAME=


def test_the_about_tab_shows_each_claim_on_both_datasets(tmp_path):
    from mae_hf.app.views import across_datasets_markdown

    study = ROOT / "docs" / "study" / "study.json"
    text = across_datasets_markdown({"MNIST": study, "Fashion-MNIST": tmp_path / "missing.json"})
    assert text.startswith("### Does it generalise?") and "no results yet" in text
    assert json.loads(study.read_text())["budgets"]
