"""The study's page (`study.md`), its data (`study.json`) and figures, with the training budget on the x-axis."""

import json
import os
from pathlib import Path

from .. import plotting
from ..analysis import factorial as fac
from ..analysis.readout import READOUT_MEASURES
from ..pipeline import to_jsonable
from ..wording import DIGITS, crossing_text, join_words, measure_words, seeds_text, verdict_spans

__all__ = ["STUDY_FILES", "study_markdown", "write_study"]

STUDY_FILES = (
    "study.md",
    "study.json",
    "budget_curves.png",
    "budget_effects.png",
    "grid_tsne.png",
    "grid_reconstructions.png",
)
COUNT_WORDS = {4: "Four", 5: "Five", 6: "Six", 7: "Seven", 8: "Eight"}
MAIN_COLUMNS = ("architecture", "corruption", "interaction", "study_contrast")


def _ci(entry: dict, digits: int) -> str:
    """`0.961 [0.949, 0.973]`; without an interval (one seed) the value alone."""
    if entry.get("ci_low") is None or entry.get("ci_high") is None:
        return f"{entry['estimate']:.{digits}f}"
    return f"{entry['estimate']:.{digits}f} [{entry['ci_low']:.{digits}f}, {entry['ci_high']:.{digits}f}]"


def _bold_if_significant(entry: dict, digits: int) -> str:
    return f"**{_ci(entry, digits)}**" if fac.is_significant(entry) else _ci(entry, digits)


def _budget_label(b: dict) -> str:
    return f"{b['images_seen']:,}"


def _seeds_note(b: dict) -> str:
    """`seeds 0, 1, 2`; with too few seeds for a verdict, `seed 0: not tested`."""
    n, ids = len(b["seeds"]), ", ".join(map(str, b["seeds"]))
    return f"seeds {ids}" if n >= fac.MIN_SEEDS else f"seed{'s' * (n > 1)} {ids}: not tested"


def _tested(study: dict) -> list[dict]:
    return [b for b in study["budgets"] if len(b["seeds"]) >= fac.MIN_SEEDS]


def study_markdown(study: dict) -> str:
    """`study.md`: the answer to each claim in words, the plan and its cost, each cell's capacity, each claim's
    measures budget by budget with their intervals over seeds, the grid and the effects, the runs."""
    sections = (_title, _answers, _plan, _cells, _claims, _grid, _effects, _figures, _runs)
    return "\n".join(line for section in sections for line in section(study)) + "\n"


def _title(study: dict) -> list[str]:
    return ["# Architecture × corruption, at every training budget", ""]


def _answers(study: dict) -> list[str]:
    """Each claim in a few sentences: its verdict at the largest budget with enough seeds (each measure's MAE − DAE
    with its interval), where the factors cross, and the verdict budget by budget."""
    tested = _tested(study)
    lines = ["## The answer, claim by claim", ""]
    if not tested:
        most = max(len(b["seeds"]) for b in study["budgets"])
        return lines + [
            f"No budget has the {fac.MIN_SEEDS} seeds a verdict needs yet ({seeds_text(most)} at most): the numbers "
            "below are measured, none is tested.",
            "",
        ]
    last = tested[-1]
    for cid, v in last["verdicts"].items():
        crossing = [measure_words(m) for m, r in v["measures"].items() if crossing_text(m, r)]
        text = f"- **{cid}: {v['claim']}.** {v['sentence']}"
        if crossing:
            text += f" The two factors cross on {join_words(crossing)} (simple effects under the claims below)."
        text += f" Budget by budget, the claim {verdict_spans(study['budgets'], cid)}."
        lines.append(text)
    return lines + [
        "",
        f"A verdict needs at least {fac.MIN_SEEDS} seeds: each interval is a 95% t-interval over seeds, seed k of "
        "every cell paired (the plan says how). A budget with fewer seeds gets its numbers and no verdict.",
        "",
    ]


def _plan(study: dict) -> list[str]:
    s, budgets = study["settings"], study["budgets"]
    cells = [c for c in study["cells"] if any(c in b["summary"] for b in budgets)]  # the cells analysed
    seeds_note = "; ".join(f"{_budget_label(b)} images: {_seeds_note(b)}" for b in budgets)
    lines = [
        "## The plan",
        "",
        f"{COUNT_WORDS.get(len(cells), len(cells))} models per seed through the same training loop and data "
        f"(`{s['dataset']}`"
        + (f", first {s['max_train_samples']} training images" if s["max_train_samples"] else "")
        + f"), {s['num_train_epochs']} epochs, batch {s['per_device_train_batch_size']}; learning rate ViT "
        f"{s['learning_rate']['vit']}, CNN {s['learning_rate']['cnn']}; masking ratio {s['mask_ratio']} of 4×4 "
        f"patches, Gaussian noise std {s['noise_factor']}. Each run is analysed at {len(budgets)} budgets, from its "
        f"checkpoints: {', '.join(_budget_label(b) for b in budgets)} training images seen. Every model is analysed "
        f"on the same {study['n_images']} test images (kNN and probe fit on {s['n_train']} training images)"
        + _readout_budgets(budgets)
        + ". Values: "
        f"mean over seeds [95% t-interval over seeds; an effect's interval is over its seed-by-seed values, seed k "
        f"of every cell paired]; with fewer than {fac.MIN_SEEDS} seeds, the mean alone and no verdict. Seeds per "
        f"budget: {seeds_note}.",
        "",
    ]
    measures = study.get("measures", {})
    if measures:
        lines += ["The measures (higher is better unless it says lower):", ""]
        lines += [
            f"- `{m}`: {d['description']}" + ("" if d["higher_is"] == "better" else " (lower is tighter)")
            for m, d in measures.items()
        ]
        lines.append("")
    return lines


def _readout_budgets(budgets: list[dict]) -> str:
    """`; the field's readouts at 60,000, ... images` (the budgets whose runs have them), or nothing."""
    first = next(iter(READOUT_MEASURES))
    have = [_budget_label(b) for b in budgets if any(first in cell for cell in b["summary"].values())]
    if not have:
        return ""
    return (
        "; the field's readouts (every training image as memory bank and probe set, each model at initialisation "
        f"beside it) at {join_words(have)} images seen"
    )


def _cells(study: dict) -> list[str]:
    """Each cell's parameter count and feature size: the architecture factor is also a capacity factor."""
    cells = study["cells"]
    if not all("num_parameters" in c for c in cells.values()):
        return []
    lines = [
        "## The cells and their capacity",
        "",
        "| cell | model | trainable parameters | feature size (the representation measures' input) |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| `{k}` | {c['label']} | {c['num_parameters']:,} | {c['feature_size']} |" for k, c in cells.items()]
    mae, dae = fac.CELLS[0], fac.CELLS[-1]  # the study's MAE (ViT + masking) and DAE (CNN + noise)
    if mae in cells and dae in cells:
        vit, cnn = cells[mae], cells[dae]
        lines += [
            "",
            f'So "architecture" is also capacity: the ViT has {vit["num_parameters"]:,} parameters and '
            f"{vit['feature_size']}-value features, the CNN {cnn['num_parameters']:,} and {cnn['feature_size']} "
            f"({vit['num_parameters'] / cnn['num_parameters']:.0f}× the parameters). The architecture effect below "
            "is the effect of the network, its objective and its size together.",
        ]
    small = [c for c in fac.CAPACITY_CELLS if c in cells]
    if small:
        analysed = any(c in b["summary"] for b in study["budgets"] for c in small)
        lines += [
            "",
            f"The capacity control ({', '.join(f'`{c}`' for c in small)}) is a ViT of the CNN's size, with both "
            "corruptions: ViT against CNN at equal capacity within each corruption, and what the full ViT's "
            "capacity adds, are in each claim's rows where it is analysed"
            + ("." if analysed else " (not trained yet: the study's next run trains it at every seed)."),
        ]
    return lines + [""]


def _claims(study: dict) -> list[str]:
    budgets = study["budgets"]
    tested = _tested(study)
    shown = tested[-1] if tested else budgets[-1]
    lines = [
        "## The claims, budget by budget",
        "",
        "Per measure and budget: MAE − DAE with its 95% interval over seeds, and **holds** (the interval excludes 0 "
        "on the side the claim predicts), **reversed** (on the other side), **not shown** (it contains 0) or **not "
        f"tested** (fewer than {fac.MIN_SEEDS} seeds: the number alone).",
        "",
    ]
    header = "| measure | " + " | ".join(f"{_budget_label(b)} ({_seeds_note(b)})" for b in budgets) + " | in words |"
    for claim, v in shown["verdicts"].items():
        lines += [f"### {claim}: {v['claim']}", "", v["sentence"], "", header, "|" + " --- |" * (len(budgets) + 2)]
        for m, t in study["timeline"][claim].items():
            marks = []
            for b in budgets:
                row = b["verdicts"].get(claim, {}).get("measures", {}).get(m)
                if row is None:
                    marks.append("—")
                    continue
                number = _ci(row["contrast"], DIGITS.get(m, 3))
                marks.append(number if row["verdict"] == "not tested" else f"{row['verdict']}: {number}")
            lines.append(f"| {m} | " + " | ".join(marks) + f" | {t['summary']} |")
        lines += ["", f"Each measure at {_budget_label(shown)} images seen ({_seeds_note(shown)}):", ""]
        lines += [f"- {r['sentence']}." for r in v["measures"].values()]
        lines.append("")
    return lines + [
        "![Every measure against the training budget, per cell](budget_curves.png)",
        "",
        "![Architecture, corruption and interaction effects against the budget](budget_effects.png)",
        "",
    ]


def _grid_table(study: dict, b: dict) -> list[str]:
    cells = [c for c in study["cells"] if c in b["summary"]]  # the cells analysed at this budget
    lines = [
        "| measure | " + " | ".join(study["cells"][c]["label"] for c in cells) + " |",
        "| --- | " + " | ".join("---" for _ in cells) + " |",
    ]
    for m in b["summary"][cells[0]]:
        lines.append(f"| {m} | " + " | ".join(_ci(b["summary"][c][m], DIGITS.get(m, 3)) for c in cells) + " |")
    return lines


def _grid(study: dict) -> list[str]:
    tested, final = _tested(study), study["budgets"][-1]
    lines = []
    if tested:
        b = tested[-1]
        lines += [f"## The grid at the largest budget tested ({_budget_label(b)} images, {_seeds_note(b)})", ""]
        lines += _grid_table(study, b) + [""]
    if not tested or final is not tested[-1]:
        lines += [
            f"## The grid at the largest budget analysed ({_budget_label(final)} images, {_seeds_note(final)})",
            "",
        ]
        lines += _grid_table(study, final) + [""]
    base = study.get("baseline_raw_pixels")
    if base:
        lines += ["Raw pixels, for reference: " + ", ".join(f"{k} {v:.3f}" for k, v in base.items()) + ".", ""]
    return lines


def _effects(study: dict) -> list[str]:
    lines = [
        "## Two-way effects at every budget",
        "",
        "Architecture = (ViT − CNN) averaged over corruptions; corruption = (masking − noise) averaged over "
        "architectures; interaction = (ViT_mask − ViT_noise) − (CNN_mask − CNN_noise); the study's contrast "
        "MAE − DAE = architecture + corruption. Each with its 95% t-interval over seeds. **Bold**: the interval "
        f"excludes 0 (never with fewer than {fac.MIN_SEEDS} seeds, never for an interval of zero width). Where the "
        "interaction is significant and larger than a main effect, the claims above give the simple effects (each "
        "factor within each level of the other).",
        "",
    ]
    for b in study["budgets"]:
        lines += [
            f"### {_budget_label(b)} images seen ({_seeds_note(b)})",
            "",
            "| measure | architecture | corruption | interaction | study's contrast (MAE − DAE) |",
            "| --- | --- | --- | --- | --- |",
        ]
        for m, row in b["effects"].items():
            d = DIGITS.get(m, 3)
            lines.append(f"| {m} | " + " | ".join(_bold_if_significant(row[e], d) for e in MAIN_COLUMNS) + " |")
        lines.append("")
    return lines


def _figures(study: dict) -> list[str]:
    shown = study.get("figures", {})
    tsne, recs = shown.get("tsne"), shown.get("reconstructions")
    lines = []
    if tsne:
        lines += [f"![t-SNE maps after {tsne['images_seen']:,} images, seed {tsne['seed']}](grid_tsne.png)", ""]
    if recs:
        lines += [
            f"![reconstructions after {recs['images_seen']:,} images, seed {recs['seed']}](grid_reconstructions.png)",
            "",
        ]
    elif tsne:
        lines += ["No run analysed so far kept example reconstructions, so that figure is left out.", ""]
    return lines


def _runs(study: dict) -> list[str]:
    s = study["settings"]
    lines = [
        "## Runs and their cost",
        "",
        "| cell | seed | epochs trained | training s | images/s | analysis s (its budgets) | hardware |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in study["runs"]:
        epochs = r.get("epochs_trained", s["num_train_epochs"])
        trained = f"{epochs} of {s['num_train_epochs']}" + ("" if r.get("complete", True) else " (resumable)")
        lines.append(
            f"| {r['cell']} | {r['seed']} | {trained} | {r['train_runtime_s']:.0f} "
            f"| {r['train_samples_per_second']:.0f} | {r['analysis_s']:.0f} | {r['hardware'] or '—'} |"
        )
    w = study["wall_time_s"]
    return lines + [
        "",
        f"Summed over the runs: training {w['training_total'] / 3600:.1f} h, analysis "
        f"{w['analysis_total'] / 60:.0f} min. The last `mae-hf study` invocation took "
        f"{w['this_invocation'] / 60:.0f} min (finished runs and analyses are skipped).",
    ]


def write_study(study: dict, analyses: dict, data: dict, results: Path) -> None:
    """`study.json`, `study.md` and the figures into `results` (each written to a temporary name, then moved in)."""
    # the cells analysed at every budget (a cell registered after the analyses were made has none)
    labels = {c: v["label"] for c, v in study["cells"].items() if all(c in b["summary"] for b in study["budgets"])}
    final = study["budgets"][-1]
    first = min(final["seeds"])
    figures = {
        "budget_curves.png": plotting.plot_budget_curves(study["budgets"], labels, study.get("baseline_raw_pixels"))[0],
        "budget_effects.png": plotting.plot_budget_effects(study["budgets"])[0],
        "grid_tsne.png": plotting.plot_grid_tsne(
            {c: analyses[first, c]["budgets"][final["name"]]["coordinates"] for c in final["summary"]},
            data["y"].numpy(),
            labels,
        )[0],
    }
    study["figures"] = {"tsne": {"images_seen": final["images_seen"], "seed": first}, "reconstructions": None}
    # The examples: the largest budget whose first seed kept them for every cell (analyses of an earlier version
    # kept them at the whole run's end only).
    for b in reversed(study["budgets"]):
        seed = min(b["seeds"])
        examples = {c: analyses[seed, c]["budgets"][b["name"]]["examples"] for c in b["summary"]}
        if all(e for e in examples.values()):
            rows = {"clean": data["x"][:8].numpy()}
            for c, e in examples.items():
                rows[f"{c} input"], rows[f"{c} output"] = e["corrupted"], e["shown"]
            figures["grid_reconstructions.png"] = plotting.plot_image_rows(rows, n_show=8)[0]
            study["figures"]["reconstructions"] = {"images_seen": b["images_seen"], "seed": seed}
            break
    else:  # none yet: an older figure (other runs) must not stand in for it
        (results / "grid_reconstructions.png").unlink(missing_ok=True)
    results.mkdir(parents=True, exist_ok=True)
    for name, fig in figures.items():
        tmp = results / f".tmp-{name}"
        fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
        os.replace(tmp, results / name)
    for name, text in (("study.json", json.dumps(to_jsonable(study), indent=1)), ("study.md", study_markdown(study))):
        tmp = results / f".tmp-{name}"
        tmp.write_text(text)
        os.replace(tmp, results / name)
