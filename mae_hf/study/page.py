"""The study's page (`study.md`), its data (`study.json`) and figures, with the training budget on the x-axis."""

import json
import os
from pathlib import Path

from .. import plotting
from ..analysis import factorial as fac
from ..pipeline import to_jsonable
from .grid import STUDY_CELLS

__all__ = ["STUDY_FILES", "DIGITS", "study_markdown", "write_study"]

STUDY_FILES = (
    "study.md",
    "study.json",
    "budget_curves.png",
    "budget_effects.png",
    "grid_tsne.png",
    "grid_reconstructions.png",
)
DIGITS = {
    "psnr": 2,
    "psnr_masked": 2,
    "psnr_noisy": 2,
    "ssim": 3,
    "tsne_radius": 2,
    "original_radius": 2,
    "scale_free_radius": 3,
    "silhouette": 3,
    "knn_accuracy": 3,
    "probe_accuracy": 3,
    "near_zero_relative": 4,
    "near_zero_relative_vs_init": 4,
    "near_zero_absolute": 4,
}
COUNT_WORDS = {4: "Four", 5: "Five", 6: "Six", 7: "Seven", 8: "Eight"}
FACTOR_WORDS = {
    "architecture": "the architecture (ViT vs CNN)",
    "corruption": "the corruption (masking vs noise)",
    "architecture and corruption": "both the architecture and the corruption",
}


def _ci(entry: dict, digits: int) -> str:
    return f"{entry['estimate']:.{digits}f} [{entry['ci_low']:.{digits}f}, {entry['ci_high']:.{digits}f}]"


def _budget_label(b: dict) -> str:
    return f"{b['images_seen']:,}"


def study_markdown(study: dict) -> str:
    """`study.md`: the plan and its cost, each claim's verdict per budget and what carries it, the grid and the
    effects at every budget, the runs."""
    sections = (_plan, _claims, _grid, _effects, _figures, _runs)
    return "\n".join(line for section in sections for line in section(study)) + "\n"


def _plan(study: dict) -> list[str]:
    s, budgets, cells = study["settings"], study["budgets"], list(study["cells"])
    seeds_note = "; ".join(f"{_budget_label(b)} images: seeds {', '.join(map(str, b['seeds']))}" for b in budgets)
    return [
        "# Architecture × corruption, at every training budget",
        "",
        f"{COUNT_WORDS.get(len(cells), len(cells))} models per seed through the same training loop and data (`{s['dataset']}`"
        + (f", first {s['max_train_samples']} training images" if s["max_train_samples"] else "")
        + f"), {s['num_train_epochs']} epochs, batch {s['per_device_train_batch_size']}; learning rate ViT "
        f"{s['learning_rate']['vit']}, CNN {s['learning_rate']['cnn']}; masking ratio {s['mask_ratio']} of 4×4 "
        f"patches, Gaussian noise std {s['noise_factor']}. Each run is analysed at {len(budgets)} budgets, from its "
        f"checkpoints: {', '.join(_budget_label(b) for b in budgets)} training images seen. Every model is analysed "
        f"on the same {study['n_images']} test images (kNN and probe fit on {s['n_train']} training images). Values: "
        f"mean over seeds [95% paired bootstrap interval over seeds and test images, {s['n_boot']} replicates]. "
        f"Seeds per budget: {seeds_note}.",
        "",
    ]


def _claims(study: dict) -> list[str]:
    budgets, final = study["budgets"], study["budgets"][-1]
    lines = [
        "## The claims, budget by budget",
        "",
        "Per measure: **holds** (the MAE − DAE contrast is significant in the claimed direction), **reversed** "
        "(significant the other way) or **not shown**; where it holds or is reversed, the factor that carries it.",
        "",
    ]
    header = "| measure | " + " | ".join(_budget_label(b) for b in budgets) + " | in words |"
    for claim, v in final["verdicts"].items():
        lines += [
            f"### {claim}: {v['claim']} — after {_budget_label(final)} images: {v['verdict']}",
            "",
            header,
            "|" + " --- |" * (len(budgets) + 2),
        ]
        for m, t in study["timeline"][claim].items():
            marks = [
                f"{verdict}" + (f" ({due})" if due and verdict != "not shown" else "")
                for verdict, due in zip(t["verdicts"], t["due_to"])
            ]
            lines.append(f"| {m} | " + " | ".join(marks) + f" | {t['summary']} |")
        held = [(m, r) for m, r in v["measures"].items() if r["verdict"] != "not shown"]
        if held:
            words = "; ".join(
                f"{m} {r['verdict']}, carried by {FACTOR_WORDS.get(r['due_to'], r['due_to'] or '—')}" for m, r in held
            )
            lines += ["", f"After {_budget_label(final)} images (the largest budget analysed): {words}."]
        lines.append("")
    return lines + [
        "![Every measure against the training budget, per cell](budget_curves.png)",
        "",
        "![Architecture, corruption and interaction effects against the budget](budget_effects.png)",
        "",
    ]


def _grid(study: dict) -> list[str]:
    final, cells = study["budgets"][-1], list(study["cells"])
    lines = [
        f"## The grid at the largest budget analysed ({_budget_label(final)} images)",
        "",
        "| measure | " + " | ".join(study["cells"][c]["label"] for c in cells) + " |",
        "| --- | " + " | ".join("---" for _ in cells) + " |",
    ]
    for m in fac.MEASURES:
        if m in final["summary"][cells[0]]:
            lines.append(f"| {m} | " + " | ".join(_ci(final["summary"][c][m], DIGITS.get(m, 3)) for c in cells) + " |")
    base = study.get("baseline_raw_pixels")
    if base:
        lines += ["", "Raw pixels, for reference: " + ", ".join(f"{k} {v:.3f}" for k, v in base.items()) + "."]
    return lines + [""]


def _effects(study: dict) -> list[str]:
    lines = [
        "## Two-way effects at every budget",
        "",
        "Architecture = (ViT − CNN) averaged over corruptions; corruption = (masking − noise) averaged over "
        "architectures; interaction = (ViT_mask − ViT_noise) − (CNN_mask − CNN_noise); the study's contrast "
        "MAE − DAE = architecture + corruption. **Bold**: the interval excludes 0.",
        "",
    ]
    for b in study["budgets"]:
        lines += [
            f"### {_budget_label(b)} images seen",
            "",
            "| measure | architecture | corruption | interaction | study's contrast (MAE − DAE) |",
            "| --- | --- | --- | --- | --- |",
        ]
        for m, row in b["effects"].items():
            d = DIGITS.get(m, 3)
            cells_txt = [
                (f"**{_ci(row[e], d)}**" if row[e]["significant"] else _ci(row[e], d))
                for e in ("architecture", "corruption", "interaction", "study_contrast")
            ]
            lines.append(f"| {m} | " + " | ".join(cells_txt) + " |")
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
    labels = {c: v["label"] for c, v in study["cells"].items()}
    final = study["budgets"][-1]
    first = min(final["seeds"])
    figures = {
        "budget_curves.png": plotting.plot_budget_curves(study["budgets"], labels, study.get("baseline_raw_pixels"))[0],
        "budget_effects.png": plotting.plot_budget_effects(study["budgets"])[0],
        "grid_tsne.png": plotting.plot_grid_tsne(
            {c: analyses[first, c]["budgets"][final["name"]]["coordinates"] for c in STUDY_CELLS},
            data["y"].numpy(),
            labels,
        )[0],
    }
    study["figures"] = {"tsne": {"images_seen": final["images_seen"], "seed": first}, "reconstructions": None}
    # The examples: the largest budget whose first seed kept them for every cell (analyses of an earlier version
    # kept them at the whole run's end only).
    for b in reversed(study["budgets"]):
        seed = min(b["seeds"])
        examples = {c: analyses[seed, c]["budgets"][b["name"]]["examples"] for c in STUDY_CELLS}
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
