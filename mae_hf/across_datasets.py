"""Each claim of the study on several datasets side by side: its verdict at the study's budget (the whole run),
the budget from which each of its measures holds, and one sentence on whether it generalises. Pure: the studies'
`study.json` contents in, rows and Markdown out (a dataset whose study has no `study.json` yet is `None`); it reads only the
JSON (no torch), so the app's page can show it."""

from .wording import join_words, measure_words, seeds_text

__all__ = ["claim_across", "across_markdown"]


def _whole_run(study: dict) -> str:
    return f"epoch_{study['settings']['num_train_epochs'] - 1}"


def _tested(study: dict) -> list[dict]:
    """The budgets with the seeds a verdict needs (`tested`, as `mae_hf.study.aggregate` marks them)."""
    return [b for b in study["budgets"] if b["tested"]]


def _holding(budget: dict, claim: str) -> list[str]:
    measures = budget["verdicts"].get(claim, {}).get("measures", {})
    return [m for m, r in measures.items() if r["verdict"] == "holds"]


def _verdict_words(budget: dict, claim: str) -> str:
    """A budget's claim verdict (`holds`, `reversed`, `not shown`), or `mixed: holds on 2 of 4 measures`."""
    v = budget["verdicts"].get(claim)
    if v is None:
        return "not measured"
    holds, n = len(_holding(budget, claim)), len(v["measures"])
    return f"mixed: holds on {holds} of {n} measures" if v["verdict"] == "mixed" else v["verdict"]


def _at_study_budget(study: dict | None, claim: str) -> str:
    """The claim's verdict at the whole run; where that has too few seeds, also at the largest budget tested."""
    if study is None:
        return "no results yet (no budget with every cell of the grid)"
    last = next((b for b in study["budgets"] if b["name"] == _whole_run(study)), None)
    tested = _tested(study)
    if last is not None and last in tested:
        return f"{_verdict_words(last, claim)} ({last['images_seen']:,} images, {seeds_text(len(last['seeds']))})"
    text = (
        f"not tested ({last['images_seen']:,} images: {seeds_text(len(last['seeds']))})"
        if last is not None
        else "not reached yet"
    )
    if tested:
        text += f"; at {tested[-1]['images_seen']:,}, the largest tested: {_verdict_words(tested[-1], claim)}"
    return text


def _holds_from(study: dict | None, claim: str) -> str:
    """Each measure that holds at the largest tested budget, with the budget from which it holds at every tested
    budget after (the field's readouts, measured at fewer budgets, from those that have them)."""
    if study is None:
        return "—"
    tested = _tested(study)
    if not tested:
        return "no budget has the seeds a verdict needs yet"
    starts: dict[int, list[str]] = {}
    for measure in _holding(tested[-1], claim):
        seen = [b for b in tested if measure in b["verdicts"].get(claim, {}).get("measures", {})]
        start = len(seen) - 1
        while start > 0 and seen[start - 1]["verdicts"][claim]["measures"][measure]["verdict"] == "holds":
            start -= 1
        starts.setdefault(seen[start]["images_seen"], []).append(measure_words(measure))
    if not starts:
        return f"holds on no measure at {tested[-1]['images_seen']:,}"
    return "; ".join(f"{join_words(words)}: {seen:,}" for seen, words in sorted(starts.items()))


def _generalises(studies: dict[str, dict | None], claim: str) -> str:
    """One sentence: at the largest budget tested on every dataset, on which measures the claim holds on all of
    them, and on which only on some."""
    missing = [name for name, s in studies.items() if s is None or not _tested(s)]
    if missing:
        has = "has" if len(missing) == 1 else "have"
        return f"Not answerable yet: {join_words(missing)} {has} no budget with the seeds a verdict needs."
    common = min(_tested(s)[-1]["images_seen"] for s in studies.values())
    at = {
        name: max((b for b in _tested(s) if b["images_seen"] <= common), key=lambda b: b["images_seen"])
        for name, s in studies.items()
    }
    holding = {name: set(_holding(b, claim)) for name, b in at.items()}
    everywhere = set.intersection(*holding.values())
    somewhere = {m: [n for n, h in holding.items() if m in h] for m in set.union(*holding.values()) - everywhere}
    where = f"at {common:,} images seen"
    if not everywhere and not somewhere:
        return f"Holds on neither dataset {where}: no measure bears it out."
    verdicts = {b["verdicts"][claim]["verdict"] for b in at.values() if claim in b["verdicts"]}
    head = "Generalises" if verdicts == {"holds"} else ("Partly" if everywhere else "Does not generalise")
    parts = []
    if everywhere:
        parts.append(f"holds on every dataset on {join_words([measure_words(m) for m in sorted(everywhere)])}")
    parts += [f"on {measure_words(m)} on {join_words(names)} only" for m, names in sorted(somewhere.items())]
    return f"{head} {where}: {'; '.join(parts)}."


def _claims(studies: dict[str, dict | None]) -> dict[str, str]:
    """Every claim the studies judge, `{id: words}`, in their order."""
    out: dict[str, str] = {}
    for study in studies.values():
        for budget in (study or {}).get("budgets", []):
            out |= {cid: v["claim"] for cid, v in budget["verdicts"].items() if cid not in out}
    return out


def claim_across(studies: dict[str, dict | None]) -> list[dict]:
    """
    Each claim across datasets.

    Args:
        studies: `{dataset name: study.json content, or None where its study has none yet}`, in the order shown.

    Returns:
        `[{"claim", "text", "datasets": {name: {"at_study_budget", "holds_from"}}, "sentence"}]`, one per claim the
        studies judge (none where no study has run).
    """
    return [
        {
            "claim": cid,
            "text": text,
            "datasets": {
                name: {"at_study_budget": _at_study_budget(s, cid), "holds_from": _holds_from(s, cid)}
                for name, s in studies.items()
            },
            "sentence": _generalises(studies, cid),
        }
        for cid, text in _claims(studies).items()
    ]


def across_markdown(studies: dict[str, dict | None]) -> str:
    """`claim_across` as a Markdown section: a table (a claim per row; per dataset its verdict at the study's
    budget and from where each measure holds) and a sentence per claim on whether it generalises."""
    rows = claim_across(studies)
    names = list(studies)
    lines = [
        "## Does it generalise? Each claim on " + join_words(names),
        "",
        "Each claim's verdict at the study's budget (the whole run), and the budget from which each measure that "
        "holds there has held at every budget tested (3 seeds; MAE − DAE, 95% intervals over seeds).",
        "",
        "| claim | " + " | ".join(f"{n}: at the study's budget | {n}: holds from" for n in names) + " |",
        "| --- |" + " --- | --- |" * len(names),
    ]
    if not rows:
        return "\n".join(lines[:2] + [f"No study has run yet on {join_words(names)}.", ""])
    for r in rows:
        cells = " | ".join(f"{d['at_study_budget']} | {d['holds_from']}" for d in r["datasets"].values())
        lines.append(f"| **{r['claim']}** {r['text']} | {cells} |")
    lines.append("")
    lines += [f"- **{r['claim']}.** {r['sentence']}" for r in rows]
    return "\n".join(lines) + "\n"
