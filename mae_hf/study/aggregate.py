"""The grid at every budget: a paired bootstrap over seeds and test images, the two-way effects and each claim's
verdict, per budget; and, for each claim and measure, the budget at which its verdict starts and whether it
stays. Pure: analyses in, a JSON-ready dict out."""

import numpy as np

from ..analysis import factorial as fac
from .grid import STUDY_CELLS

__all__ = ["aggregate_budget", "verdict_timeline", "aggregate"]


def aggregate_budget(
    analyses: dict, seeds: list[int], budget: str, labels: np.ndarray, n_boot: int, seed: int = 0
) -> dict:
    """Summary with intervals, effects and verdicts of one budget over `seeds` (every cell analysed for each)."""
    runs = {}
    for cell in STUDY_CELLS:
        per = [analyses[s, cell]["budgets"][budget] for s in seeds]
        runs[cell] = {k: np.stack([a["per_image"][k] for a in per]) for k in per[0]["per_image"]}
        runs[cell] |= {k: np.array([a["scalars"][k] for a in per]) for k in per[0]["scalars"]}
    draws = fac.bootstrap_draws(len(seeds), len(labels), n_boot, seed=seed)
    replicates = fac.bootstrap_cells(runs, labels, draws)
    summary = fac.summarize_cells(runs, labels, replicates)
    effects = fac.effects(summary, replicates)
    return {"summary": summary, "effects": effects, "verdicts": fac.claim_verdicts(effects)}


def verdict_timeline(budgets: list[dict]) -> dict:
    """
    For each claim and measure, its verdict at every budget, and in words where it starts and whether it lasts:
    `{claim: {measure: {"verdicts": [...], "summary": "holds from 60,032 images on"}}}`.
    """
    out: dict = {}
    for claim in budgets[-1]["verdicts"]:
        out[claim] = {}
        for measure in budgets[-1]["verdicts"][claim]["measures"]:
            verdicts = [b["verdicts"][claim]["measures"][measure]["verdict"] for b in budgets]
            due = [b["verdicts"][claim]["measures"][measure]["due_to"] for b in budgets]
            out[claim][measure] = {
                "verdicts": verdicts,
                "due_to": due,
                "summary": _describe(verdicts, [b["images_seen"] for b in budgets]),
            }
    return out


def _describe(verdicts: list[str], seen: list[int]) -> str:
    final = verdicts[-1]
    if all(v == final for v in verdicts):
        return f"{final} at every budget"
    start = len(verdicts) - 1
    while start > 0 and verdicts[start - 1] == final:
        start -= 1
    before = ", ".join(sorted(set(verdicts[:start])))
    return f"{final} from {seen[start]:,} images seen on ({before} before)"


def aggregate(analyses: dict, budget_names: list[str], labels: np.ndarray, n_boot: int, seed: int = 0) -> dict:
    """
    Every budget of the grid, each over the seeds for which every cell is analysed at it.

    Returns:
        `{"budgets": [{"name", "images_seen", "seeds", "summary", "effects", "verdicts"}], "timeline": ...}`.
    """
    seeds_all = sorted({s for s, _ in analyses})
    budgets = []
    for name in budget_names:
        seeds = [
            s for s in seeds_all if all((s, c) in analyses and name in analyses[s, c]["budgets"] for c in STUDY_CELLS)
        ]
        if not seeds:
            continue
        seen = [
            b["images_seen"]
            for s in seeds
            for c in STUDY_CELLS
            for b in analyses[s, c]["meta"]["budgets"]
            if b["name"] == name
        ]
        budgets.append(
            {"name": name, "images_seen": int(np.median(seen)), "seeds": seeds}
            | aggregate_budget(analyses, seeds, name, labels, n_boot, seed)
        )
    return {"budgets": budgets, "timeline": verdict_timeline(budgets) if budgets else {}}
