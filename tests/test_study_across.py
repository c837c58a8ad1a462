"""Each claim of the study on several datasets: the verdict at the study's budget, the tested budgets over which
each measure has held, and whether the claim's verdicts carry over (`mae_hf.across_datasets`, `mae-hf study-across`, the About tab)."""

from pathlib import Path

from mae_hf import cli
from mae_hf.across_datasets import across_markdown, claim_across
from mae_hf.analysis.factorial import CLAIMS
from mae_hf.wording import measure_words

ROOT = Path(__file__).resolve().parent.parent
SEEN = {"step_188": 12_032, "epoch_0": 60_000, "epoch_3": 240_000, "epoch_19": 1_200_000}


def _study(verdicts: dict[str, list[str | None]], seeds: list[int] | None = None, seen: dict | None = None) -> dict:
    """A study.json with the H1 measures' verdicts budget by budget (`{measure: [verdict per budget]}`, None: not
    measured at that budget); every other claim's measures are "not shown"; `seeds`: seeds per budget (default 3
    everywhere); `seen`: `{budget name: images seen}` (default `SEEN`)."""
    seen = seen or SEEN
    seeds = seeds or [3] * len(seen)
    budgets = []
    for i, (name, images) in enumerate(seen.items()):
        per_claim = {}
        for cid, spec in CLAIMS.items():
            given = verdicts if cid == "H1" else {m: ["not shown"] * len(seen) for m in spec["measures"]}
            measures = {m: {"verdict": v[i]} for m, v in given.items() if v[i] is not None}
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
                "images_seen": images,
                "seeds": list(range(seeds[i])),
                "tested": seeds[i] >= 3,
                "verdicts": per_claim,
            }
        )
    return {"settings": {"num_train_epochs": 20}, "budgets": budgets}


def test_a_claim_with_the_same_verdicts_on_both_datasets_carries_over_and_says_over_which_budgets():
    mnist = _study({"tsne_radius": ["reversed", "holds", "holds", "holds"], "silhouette": ["holds"] * 4})
    fashion = _study({"tsne_radius": ["not shown", "not shown", "holds", "holds"], "silhouette": ["holds"] * 4})
    h1 = claim_across({"MNIST": mnist, "Fashion-MNIST": fashion})[0]
    assert h1["claim"] == "H1"
    assert h1["datasets"]["MNIST"]["at_study_budget"] == "holds (1,200,000 images, 3 seeds)"
    assert h1["datasets"]["MNIST"]["holds_over"] == "silhouette: 12,032–1,200,000; t-SNE radius: 60,000–1,200,000"
    assert h1["datasets"]["Fashion-MNIST"]["holds_over"] == (
        "silhouette: 12,032–1,200,000; t-SNE radius: 240,000–1,200,000"
    )
    assert h1["sentence"] == (
        "Carries over at 1,200,000 images seen: the same verdict on every dataset on 2 of 2 measures (holds on "
        "t-SNE radius and silhouette)."
    )
    # the same mixed verdicts on both datasets carry over too
    mixed = _study({"tsne_radius": ["holds"] * 4, "silhouette": ["reversed"] * 4})
    h1 = claim_across({"MNIST": mixed, "Fashion-MNIST": mixed})[0]
    assert h1["sentence"].startswith("Carries over at 1,200,000 images seen: the same verdict on every dataset on 2 of")
    assert "(holds on t-SNE radius; reversed on silhouette)" in h1["sentence"]


def test_a_claim_whose_verdicts_differ_says_where():
    mnist = _study({"tsne_radius": ["holds"] * 4, "silhouette": ["holds"] * 4})
    fashion = _study({"tsne_radius": ["holds"] * 4, "silhouette": ["reversed"] * 4})
    h1 = claim_across({"MNIST": mnist, "Fashion-MNIST": fashion})[0]
    assert h1["datasets"]["Fashion-MNIST"]["at_study_budget"].startswith("mixed: holds on 1 of 2 measures")
    assert h1["sentence"] == (
        "Partly carries over at 1,200,000 images seen: the same verdict on every dataset on 1 of 2 measures (holds "
        "on t-SNE radius); different on silhouette (holds on MNIST, reversed on Fashion-MNIST)."
    )
    fashion = _study({"tsne_radius": ["reversed"] * 4, "silhouette": ["not shown"] * 4})
    h1 = claim_across({"MNIST": mnist, "Fashion-MNIST": fashion})[0]
    assert h1["sentence"].startswith("Does not carry over at 1,200,000 images seen: different on t-SNE radius (holds")
    assert h1["datasets"]["Fashion-MNIST"]["holds_over"] == "holds on no measure at 1,200,000"


def test_a_measure_missing_on_one_dataset_is_not_compared():
    """The field's readouts are taken at fewer budgets, and an older study has none: such a measure is named, not
    counted as a difference; the span over which it holds runs over the budgets that measure it."""
    readout = "knn_cosine_k20"
    mnist = _study({"tsne_radius": ["holds"] * 4})
    fashion = _study({"tsne_radius": ["holds"] * 4, readout: [None, "reversed", "holds", "holds"]})
    h1 = claim_across({"MNIST": mnist, "Fashion-MNIST": fashion})[0]
    assert h1["sentence"] == (
        "Carries over at 1,200,000 images seen: the same verdict on every dataset on 1 of 1 measures (holds on t-SNE "
        f"radius); not compared: {measure_words(readout)} (not measured on MNIST)."
    )
    assert f"{measure_words(readout)}: 240,000–1,200,000" in h1["datasets"]["Fashion-MNIST"]["holds_over"]
    only = _study({readout: ["holds"] * 4})
    h1 = claim_across({"MNIST": _study({"tsne_radius": ["holds"] * 4}), "Fashion-MNIST": only})[0]
    assert h1["sentence"] == "Not answerable at 1,200,000 images seen: no measure is measured on every dataset."


def test_budgets_without_three_seeds_and_missing_studies_give_no_verdict():
    # seeds 1 and 2 stopped after 4 epochs: the whole run is not tested, the largest tested budget is named
    mnist = _study({"tsne_radius": ["holds"] * 4}, seeds=[3, 3, 3, 1])
    row = claim_across({"MNIST": mnist, "Fashion-MNIST": None})[0]
    assert row["datasets"]["MNIST"]["at_study_budget"] == (
        "not tested (1,200,000 images: 1 seed); at 240,000, the largest tested: holds"
    )
    assert row["datasets"]["MNIST"]["holds_over"] == "t-SNE radius: 12,032–240,000"
    assert row["datasets"]["Fashion-MNIST"] == {"at_study_budget": "no results yet", "holds_over": "—"}
    assert row["sentence"] == "Not answerable yet: Fashion-MNIST has no budget with the seeds a verdict needs."
    # both tested, to different budgets: compared at the largest budget both have tested
    fashion = _study({"tsne_radius": ["holds", "holds", "reversed", "reversed"]}, seeds=[3, 3, 1, 1])
    row = claim_across({"MNIST": mnist, "Fashion-MNIST": fashion})[0]
    assert row["sentence"].startswith("Carries over at 60,000 images seen")
    # no tested budget in common (one study's budgets elsewhere): said, not guessed
    other = _study({"tsne_radius": ["holds"] * 4}, seen={k: v + 1 for k, v in SEEN.items()})
    row = claim_across({"MNIST": mnist, "Fashion-MNIST": other})[0]
    assert row["sentence"] == "Not answerable yet: no budget is tested on every dataset."
    text = across_markdown({"MNIST": mnist, "Fashion-MNIST": fashion})
    assert text.count("\n| **H") == len(CLAIMS) and "| MNIST: at the study's budget | MNIST: holds over |" in text
    assert "No study has results yet on MNIST and Fashion-MNIST." in across_markdown(
        {"MNIST": None, "Fashion-MNIST": None}
    )


def test_the_committed_studies_give_the_table_both_study_pages_open_with(tmp_path, capsys):
    assert cli.main(["study-across", f"MNIST={ROOT / 'docs/study/study.json'}", f"Other={tmp_path / 'no.json'}"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("## Does it generalise? Each claim on MNIST and Other")
    assert "| no results yet | — |" in text and text.count("\n| **H") == len(CLAIMS)
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
    assert text.startswith("### Does it generalise? Each claim on MNIST and Fashion-MNIST")
    assert text.count("\n| **H") == len(CLAIMS) and "| no results yet | — |" in text
