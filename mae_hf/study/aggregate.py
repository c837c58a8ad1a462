"""The grid at every budget: each run's value of every measure, paired t-intervals over seeds of the cell means and
effects, and each claim's verdict with its sentence, per budget; and, for each claim and measure, the budget at which
its verdict starts and whether it stays. Pure: analyses in, a JSON-ready dict out."""

import numpy as np

from ..analysis import factorial as fac
from ..wording import claim_sentence, join_words, measure_sentence, seeds_text
from .grid import STUDY_CELLS

__all__ = ["budget_runs", "aggregate_budget", "verdict_timeline", "aggregate"]


def budget_runs(analyses: dict, seeds: list[int], budget: str) -> dict[str, dict[str, np.ndarray]]:
    """
    Every measure the analyses hold at `budget`, stacked over `seeds` per cell (the cells analysed at it for every
    one of `seeds`): `{cell: {measure: (S, N) per-image values or (S,) scalars}}`. A measure is kept when every run
    of the budget has it (an analysis written before a measure was added lacks it), so measures are read from the
    analyses, not from a fixed list.
    """
    cells = [c for c in STUDY_CELLS if all((s, c) in analyses and budget in analyses[s, c]["budgets"] for s in seeds)]
    per = {cell: [analyses[s, cell]["budgets"][budget] for s in seeds] for cell in cells}
    every = [a for runs in per.values() for a in runs]
    per_image = set.intersection(*(set(a["per_image"]) for a in every))
    # one value per run: the scalars and the field's readouts (an analysis of version 2 has no readouts)
    one_value = {id(a): a["scalars"] | a.get("readout", {}) for a in every}
    scalars = set.intersection(*(set(v) for v in one_value.values()))
    order = list(fac.MEASURES) + sorted((per_image | scalars) - set(fac.MEASURES))
    runs = {}
    for cell, budgets in per.items():
        runs[cell] = {}
        for name in order:
            if name in per_image:
                runs[cell][name] = np.stack([a["per_image"][name] for a in budgets])
            elif name in scalars:
                runs[cell][name] = np.array([one_value[id(a)][name] for a in budgets])
    return runs


def aggregate_budget(analyses: dict, seeds: list[int], budget: str, labels: np.ndarray, images_seen: int) -> dict:
    """
    Summary, effects and verdicts of one budget over `seeds` (every cell analysed for each).

    Returns:
        `{"n_seeds", "tested" (at least `MIN_SEEDS` seeds), "summary", "effects", "verdicts"}`; each claim's verdict
        and each of its measures carries a `sentence` (`mae_hf.wording`).
    """
    values = fac.seed_values(budget_runs(analyses, seeds, budget), labels)
    summary = fac.summarize_cells(values)
    table = fac.effects(values)
    verdicts = fac.claim_verdicts(summary, table)
    for verdict in verdicts.values():
        for measure, row in verdict["measures"].items():
            row["sentence"] = measure_sentence(measure, row)
        verdict["sentence"] = claim_sentence(verdict, images_seen)
    return {
        "n_seeds": len(seeds),
        "tested": len(seeds) >= fac.MIN_SEEDS,
        "summary": summary,
        "effects": table,
        "verdicts": verdicts,
    }


def verdict_timeline(budgets: list[dict]) -> dict:
    """
    For each claim and measure, its verdict at every budget, and in words where it starts and whether it lasts
    over the budgets with enough seeds, and which budgets are not tested: `{claim: {measure: {"verdicts": [...],
    "due_to": [...], "summary": "holds from 240,000 images seen on (reversed before); 600,000–1,200,000 images: 1
    seed, not tested"}}}`.
    """
    out: dict = {}
    for claim in budgets[-1]["verdicts"]:
        out[claim] = {}
        for measure in budgets[-1]["verdicts"][claim]["measures"]:
            rows = [b["verdicts"].get(claim, {}).get("measures", {}).get(measure) for b in budgets]
            out[claim][measure] = {
                "verdicts": [r["verdict"] if r else "not measured" for r in rows],
                "due_to": [r["due_to"] if r else None for r in rows],
                "summary": _describe(budgets, [r["verdict"] if r else "not measured" for r in rows]),
            }
    return out


def _span(seen: list[int]) -> str:
    return f"{seen[0]:,}" if len(seen) == 1 else f"{seen[0]:,}–{seen[-1]:,}"


def _describe(budgets: list[dict], verdicts: list[str]) -> str:
    tested = [(v, b["images_seen"]) for v, b in zip(verdicts, budgets) if v not in ("not tested", "not measured")]
    untested = [b for v, b in zip(verdicts, budgets) if v == "not tested"]
    parts = []
    if tested:
        final = tested[-1][0]
        start = len(tested) - 1
        while start > 0 and tested[start - 1][0] == final:
            start -= 1
        if start == 0:
            parts.append(f"{final} at every budget tested" if len(tested) > 1 else f"{final} at {tested[0][1]:,}")
        else:
            before = ", ".join(sorted({v for v, _ in tested[:start]}))
            parts.append(f"{final} from {tested[start][1]:,} images seen on ({before} before)")
    if untested:
        counts = sorted({len(b["seeds"]) for b in untested})
        parts.append(
            f"{_span([b['images_seen'] for b in untested])} images: "
            f"{join_words([seeds_text(c) for c in counts])}, not tested"
        )
    return "; ".join(parts) if parts else "not measured"


def aggregate(analyses: dict, budget_names: list[str], labels: np.ndarray) -> dict:
    """
    Every budget of the grid, each over the seeds for which every cell is analysed at it.

    Returns:
        `{"budgets": [{"name", "images_seen", "seeds", "n_seeds", "tested", "summary", "effects", "verdicts"}],
        "timeline": ...}`.
    """
    seeds_all = sorted({s for s, _ in analyses})
    budgets = []
    for name in budget_names:
        # the seeds with the 2 × 2 design's cells at this budget; other cells (the capacity control, any registered)
        # join it where they have every one of those seeds
        seeds = [
            s for s in seeds_all if all((s, c) in analyses and name in analyses[s, c]["budgets"] for c in fac.CELLS)
        ]
        if not seeds:
            continue
        seen = [
            b["images_seen"]
            for s in seeds
            for c in fac.CELLS
            for b in analyses[s, c]["meta"]["budgets"]
            if b["name"] == name
        ]
        images_seen = int(np.median(seen))
        budgets.append(
            {"name": name, "images_seen": images_seen, "seeds": seeds}
            | aggregate_budget(analyses, seeds, name, labels, images_seen)
        )
    return {"budgets": budgets, "timeline": verdict_timeline(budgets) if budgets else {}}
