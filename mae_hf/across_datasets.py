"""Each claim of the study on several datasets side by side: its verdict at the study's budget (the whole run), the
span of tested budgets over which each of its measures has held, and one sentence on whether its verdicts carry
over from one dataset to the other. Pure: the studies' `study.json` contents in, rows and Markdown out (a dataset
whose study has no `study.json` yet is `None`); it reads only the JSON (no torch), so the app's page can show it."""

from .wording import join_words, measure_words, seeds_text

__all__ = ["claim_across", "across_markdown"]

NO_RESULTS = "no results yet"


def _whole_run(study: dict) -> str:
    return f"epoch_{study['settings']['num_train_epochs'] - 1}"


def _tested(study: dict) -> list[dict]:
    """The budgets with the seeds a verdict needs (`tested`, as `mae_hf.study.aggregate` marks them)."""
    return [b for b in study["budgets"] if b["tested"]]


def _measures(budget: dict, claim: str) -> dict[str, str]:
    """`{measure: verdict}` of a claim at a budget (the measures measured there)."""
    rows = budget["verdicts"].get(claim, {}).get("measures", {})
    return {m: r["verdict"] for m, r in rows.items()}


def _verdict_words(budget: dict, claim: str) -> str:
    """A budget's claim verdict (`holds`, `reversed`, `not shown`), or `mixed: holds on 2 of 4 measures`."""
    v = budget["verdicts"].get(claim)
    if v is None:
        return "not measured"
    verdicts = _measures(budget, claim)
    holds = sum(v == "holds" for v in verdicts.values())
    return f"mixed: holds on {holds} of {len(verdicts)} measures" if v["verdict"] == "mixed" else v["verdict"]


def _at_study_budget(study: dict | None, claim: str) -> str:
    """The claim's verdict at the whole run; where that has too few seeds, at the largest budget tested instead."""
    if study is None:
        return NO_RESULTS
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


def _holds_over(study: dict | None, claim: str) -> str:
    """Each measure that holds at the largest tested budget, with the span of tested budgets (those that measure
    it: the field's readouts are taken at fewer) over which it has held: `silhouette: 12,032–240,000`."""
    if study is None:
        return "—"
    tested = _tested(study)
    if not tested:
        return "no budget has the seeds a verdict needs yet"
    spans: dict[tuple[int, int], list[str]] = {}
    for measure, verdict in _measures(tested[-1], claim).items():
        if verdict != "holds":
            continue
        seen = [b for b in tested if measure in _measures(b, claim)]
        start = len(seen) - 1
        while start > 0 and _measures(seen[start - 1], claim)[measure] == "holds":
            start -= 1
        spans.setdefault((seen[start]["images_seen"], seen[-1]["images_seen"]), []).append(measure_words(measure))
    if not spans:
        return f"holds on no measure at {tested[-1]['images_seen']:,}"
    return "; ".join(
        f"{join_words(words)}: " + (f"{a:,}" if a == b else f"{a:,}–{b:,}") for (a, b), words in sorted(spans.items())
    )


def _carries_over(studies: dict[str, dict | None], claim: str) -> str:
    """One sentence: at the largest budget tested on every dataset, which of the claim's measures get the same
    verdict on every dataset and which do not, and which are not measured on one of them."""
    missing = [name for name, s in studies.items() if s is None or not _tested(s)]
    if missing:
        has = "has" if len(missing) == 1 else "have"
        return f"Not answerable yet: {join_words(missing)} {has} no budget with the seeds a verdict needs."
    shared = set.intersection(*({b["images_seen"] for b in _tested(s)} for s in studies.values()))
    if not shared:
        return "Not answerable yet: no budget is tested on every dataset."
    seen = max(shared)
    verdicts = {
        name: _measures(next(b for b in _tested(s) if b["images_seen"] == seen), claim) for name, s in studies.items()
    }
    measures = list(dict.fromkeys(m for v in verdicts.values() for m in v))
    same: dict[str, list[str]] = {}
    differ, unmeasured = [], []
    for m in measures:
        absent = [name for name, v in verdicts.items() if m not in v]
        if absent:
            unmeasured.append(f"{measure_words(m)} (not measured on {join_words(absent)})")
            continue
        kinds = {v[m] for v in verdicts.values()}
        if len(kinds) == 1:
            same.setdefault(kinds.pop(), []).append(measure_words(m))
        else:
            differ.append(f"{measure_words(m)} ({', '.join(f'{v[m]} on {n}' for n, v in verdicts.items())})")
    compared = sum(len(w) for w in same.values()) + len(differ)
    if not compared:
        return f"Not answerable at {seen:,} images seen: no measure is measured on every dataset."
    head = "Carries over" if not differ else ("Partly carries over" if same else "Does not carry over")
    parts = []
    if same:
        n = sum(len(words) for words in same.values())
        listed = "; ".join(f"{v} on {join_words(words)}" for v, words in same.items())
        parts.append(f"the same verdict on every dataset on {n} of {compared} measures ({listed})")
    if differ:
        parts.append(f"different on {join_words(differ)}")
    if unmeasured:
        parts.append(f"not compared: {join_words(unmeasured)}")
    return f"{head} at {seen:,} images seen: {'; '.join(parts)}."


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
        `[{"claim", "text", "datasets": {name: {"at_study_budget", "holds_over"}}, "sentence"}]`, one per claim the
        studies judge (none where no study has results).
    """
    return [
        {
            "claim": cid,
            "text": text,
            "datasets": {
                name: {"at_study_budget": _at_study_budget(s, cid), "holds_over": _holds_over(s, cid)}
                for name, s in studies.items()
            },
            "sentence": _carries_over(studies, cid),
        }
        for cid, text in _claims(studies).items()
    ]


def across_markdown(studies: dict[str, dict | None]) -> str:
    """`claim_across` as a Markdown section: a table (a claim per row; per dataset its verdict at the study's
    budget and the budgets over which each measure has held) and a sentence per claim on whether its verdicts carry
    over."""
    rows = claim_across(studies)
    names = list(studies)
    lines = [
        "## Does it generalise? Each claim on " + join_words(names),
        "",
    ]
    if not rows:
        return "\n".join(lines + [f"No study has results yet on {join_words(names)}.", ""])
    lines += [
        "A verdict compares the MAE with the DAE (MAE − DAE, 95% t-interval over 3 seeds; the numbers are on each "
        "dataset's page). *At the study's budget*: the claim's verdict at the whole run, or, where that budget has "
        "fewer than 3 seeds, at the largest budget that has them. *Holds over*: each measure that holds at the "
        "largest tested budget, and the tested budgets over which it has held (from the first to the last; budgets "
        "with fewer seeds are not counted). A study with no budget that has every cell of the grid shows "
        f'"{NO_RESULTS}".',
        "",
        "| claim | " + " | ".join(f"{n}: at the study's budget | {n}: holds over" for n in names) + " |",
        "| --- |" + " --- | --- |" * len(names),
    ]
    for r in rows:
        cells = " | ".join(f"{d['at_study_budget']} | {d['holds_over']}" for d in r["datasets"].values())
        lines.append(f"| **{r['claim']}** {r['text']} | {cells} |")
    lines.append("")
    lines += [f"- **{r['claim']}.** {r['sentence']}" for r in rows]
    return "\n".join(lines) + "\n"
