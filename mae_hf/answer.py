"""The answer to each claim of the original study, in words: one sentence per claim (H1, H1b, H2, H3) with the
training budget and the numbers that decide it, written from the committed results: the shipped models' report
(`docs/results/metrics.json`) and the architecture × corruption study (`docs/study/study.json`).

Pure: dicts in, Markdown out, and no torch import, so the app's page can show it before the models load. `mae-hf
answer` prints it and rewrites the README's block; `make results-page` puts it at the top of docs/RESULTS.md.
Every verdict comes from the JSON. The shipped models are one trained model of each method (one seed each): their
rows compare these two models, and the words say so; the methods are compared in the study, whose verdicts rest on
intervals over seeds (`mae_hf.analysis.factorial`): at each budget with enough seeds, each measure's MAE − DAE with
its interval; a budget with fewer seeds is named, "1 seed: not tested".
"""

import re

from .labels import MEASURE_LABELS
from .wording import claim_clause, join_words, seeds_text, untested_text, verdict_spans

__all__ = [
    "ANSWER_START",
    "ANSWER_END",
    "CLAIM_QUESTIONS",
    "shipped_answer",
    "study_answer",
    "claim_answers",
    "answer_markdown",
    "answer_block",
    "replace_answer_block",
]

ANSWER_START = "<!-- answer:start: written by `make results-page` (mae_hf/answer.py) from the results JSON -->"
ANSWER_END = "<!-- answer:end -->"
# Each claim as a reader asks it; a claim not listed is shown with its text from the JSON.
CLAIM_QUESTIONS = {
    "H1": "the MAE's features cluster by class more tightly than the DAE's",
    "H1b": "the MAE's features carry the digit's class better",
    "H2": 'the DAE has more near-zero weights (it "learns less")',
    "H3": "the MAE reconstructs digits better",
}
# The report's verdict rows behind each claim: (its claim, its measures; None = all). The report's H1 covers the
# study's H1 (cluster measures) and H1b (classifiers).
SHIPPED_ROWS = {
    "H1": ("H1", ("tsne_radius", "original_radius", "scale_free_radius", "silhouette")),
    "H1b": ("H1", ("knn_accuracy", "linear_probe_accuracy")),
}
FEATURE_WORDS = {
    "mae_cls": "its CLS token",
    "mae_mean": "its mean-pooled tokens",
    "mae_masked_flat": "the study's masked, flattened latent",
}
INPUT_WORDS = {
    "MAE: masked, DAE: noisy": "under each model's own corruption",
    "MAE: masked, DAE: masked": "on the same masked digits",
    "MAE: noisy, DAE: noisy": "on the same noisy digits",
}


def _label(measure: str) -> str:
    return MEASURE_LABELS.get(measure, measure).replace(" (dB)", "")


def _value(measure: str, value: float) -> str:
    if measure.startswith("near_zero"):
        return f"{100 * value:.1f}%"
    return f"{value:.2f} dB" if measure.startswith("psnr") else f"{value:.3f}"


def _pair(measure: str, mae: float, dae: float) -> str:
    """Both models' numbers: `silhouette: MAE 0.269, DAE 0.086`."""
    return f"{_label(measure)}: MAE {_value(measure, mae)}, DAE {_value(measure, dae)}"


def _yes_no(rows: list[dict]) -> str:
    holds = [r["holds"] for r in rows]
    return "yes" if all(holds) else "no" if not any(holds) else f"{sum(holds)} of {len(holds)} measures"


def _group(rows: list, key) -> dict:
    groups: dict = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    return groups


def _digits(metrics: dict) -> str:
    return f"the first {metrics['settings']['n']:,} {metrics.get('meta', {}).get('split', 'test')} digits"


def _shipped_rows(metrics: dict, claim: str) -> list[dict]:
    source, measures = SHIPPED_ROWS.get(claim, (claim, None))
    rows = metrics.get("verdicts", {}).get(source, {}).get("measures", [])
    return [r for r in rows if measures is None or r["measure"] in measures]


def _by_features(rows: list[dict]) -> str:
    """Which MAE features are on the claimed side: "yes with its CLS token and its mean-pooled tokens on all 4
    measures, but only 1 of 4 with the study's masked, flattened latent"."""
    groups = _group(rows, lambda r: r["features"])
    n = len(rows) // len(groups)
    yes = [f for f, g in groups.items() if all(r["holds"] for r in g)]
    none = [f for f, g in groups.items() if not any(r["holds"] for r in g)]
    every = {1: "its one measure", 2: "both measures"}.get(n, f"all {n} measures")
    parts = [f"yes with {join_words([FEATURE_WORDS.get(f, f) for f in yes])} on {every}"] if yes else []
    parts += [
        f"only {sum(r['holds'] for r in g)} of {n} with {FEATURE_WORDS.get(f, f)}"
        for f, g in groups.items()
        if f not in yes and f not in none
    ]
    if none:
        words = join_words([FEATURE_WORDS.get(f, f) for f in none])
        parts.append(f"not with {words}" if parts else f"no with {words} (none of the {n} measures)")
    return parts[0] + (", but " + join_words(parts[1:]) if len(parts) > 1 else "")


def _classifier_numbers(metrics: dict) -> str | None:
    """The scorecard's classifiers on the mean-pooled tokens (every test digit it scored), when it ran."""
    sc = metrics.get("scorecard")
    if not sc or "train" not in sc["mae"]["classifiers"]:
        return None
    mae, dae = sc["mae"]["classifiers"]["train"], sc["dae"]["classifiers"]["train"]
    return (
        f"mean-pooled tokens, fit on {sc['train_sets']['train']:,} training digits and scored on "
        f"{sc['n_test']:,} test digits: 5-NN MAE {mae['knn']:.3f}, DAE {dae['knn']:.3f}; linear probe "
        f"MAE {mae['probe']:.3f}, DAE {dae['probe']:.3f}"
    )


def _quoted_row(rows: list[dict], measure: str, metrics: dict) -> str:
    row = next((r for r in rows if r["measure"] == measure and r.get("features", "mae_mean") == "mae_mean"), None)
    return f"{_pair(measure, row['mae'], row['dae'])}, mean-pooled tokens on {_digits(metrics)}" if row else ""


def _shipped_h2(rows: list[dict], weights: dict) -> str:
    """The verdict under each kind of threshold, with both models' trained fractions."""
    below = {
        "relative": f"|w| < {weights.get('eps_rel')} × the layer's std",
        "absolute": f"|w| < {weights.get('eps_abs')}",
    }
    words = {"relative": "relative to each layer's spread", "absolute": "with an absolute threshold"}
    parts = []
    groups = _group(rows, lambda r: "relative" if "relative" in r["measure"] else "absolute")
    for kind, group in sorted(groups.items(), key=lambda kv: _yes_no(kv[1]) != "yes"):
        trained = next((r for r in group if r["measure"] == f"near_zero_fraction_{kind}"), group[0])
        parts.append(
            f"{_yes_no(group)} {words[kind]} ({below[kind]}: DAE {_value('near_zero', trained['dae'])}, "
            f"MAE {_value('near_zero', trained['mae'])} of the weights)"
        )
    return ", ".join(parts)


def _shipped_h3(rows: list[dict], metrics: dict) -> str:
    """The verdict for each pair of inputs, with both models' PSNR."""
    parts = []
    for inputs, group in _group(rows, lambda r: r.get("corruption", "")).items():
        psnr = next((r for r in group if r["measure"] == "psnr"), group[0])
        parts.append(
            f"{_yes_no(group)} {INPUT_WORDS.get(inputs, inputs)} ({_pair(psnr['measure'], psnr['mae'], psnr['dae'])})"
        )
    return ", ".join(parts) + f", on {_digits(metrics)}"


ONE_OF_EACH = "one trained model of each, so this compares these two models, and the study compares the methods"


def _budget(metrics: dict, models: str) -> str:
    """The models, how many training images they saw (their learning curves' last checkpoint) when known, and that
    they are one trained model of each method."""
    curves = metrics.get("learning_curves") or {}
    seen = {k: curves[k][-1]["images_seen"] for k in ("mae", "dae") if curves.get(k)}
    if len(seen) < 2:
        return f"{models} ({ONE_OF_EACH})"
    return f"{models} (MAE {seen['mae']:,} training images seen, DAE {seen['dae']:,}; {ONE_OF_EACH})"


def shipped_answer(metrics: dict, claim: str, models: str = "the shipped models") -> str | None:
    """The report's half of a claim's sentence, from its verdict rows (`metrics["verdicts"]`), naming the models it
    analysed as `models`; None when the report has no measure for the claim."""
    rows = _shipped_rows(metrics, claim)
    if not rows:
        return None
    if claim in ("H1", "H1b") and all("features" in r for r in rows):
        numbers = (_classifier_numbers(metrics) if claim == "H1b" else None) or _quoted_row(
            rows, "silhouette" if claim == "H1" else "knn_accuracy", metrics
        )
        words = _by_features(rows) + (f" ({numbers})" if numbers else "")
    elif claim == "H2":
        words = _shipped_h2(rows, metrics.get("weights", {}))
    elif claim == "H3":
        words = _shipped_h3(rows, metrics)
    else:
        words = f"{_yes_no(rows)} ({sum(r['holds'] for r in rows)} of {len(rows)} measures, on {_digits(metrics)})"
    return f"for {_budget(metrics, models)}, {words}"


def study_answer(study: dict, claim: str) -> str | None:
    """The study's half of a claim's sentence: its verdict budget by budget with the seeds behind each, and, at the
    largest budget with enough seeds, each measure's MAE − DAE with its interval over seeds; None when the study has
    no verdict for the claim."""
    budgets = [b for b in study.get("budgets", []) if claim in b["verdicts"]]
    if not budgets:
        return None
    tested = [b for b in budgets if b["verdicts"][claim]["verdict"] != "not tested"]
    untested = [b for b in budgets if b["verdicts"][claim]["verdict"] == "not tested"]
    parts = []
    if tested:
        last = tested[-1]
        n = last["verdicts"][claim]["n_seeds"]
        parts += [
            verdict_spans(tested, claim),
            f"at {last['images_seen']:,} ({seeds_text(n)}; MAE − DAE, 95% interval over seeds) it "
            + claim_clause(last["verdicts"][claim]),
        ]
    if untested:
        parts.append(untested_text(untested))
    return "in the study (ViT + masking against CNN + noise)" + (" it " if tested else ", ") + "; ".join(parts)


def _claims(metrics: dict | None, study: dict | None) -> dict[str, str]:
    """Claim id → its text from the JSON, H1, H1b, H2, H3 in order."""
    texts: dict[str, str] = {}
    if study and study.get("budgets"):
        texts |= {cid: v["claim"] for cid, v in study["budgets"][-1]["verdicts"].items()}
    if metrics:
        for cid, v in metrics.get("verdicts", {}).items():
            texts.setdefault(cid, v["claim"])
        if _shipped_rows(metrics, "H1b"):
            texts.setdefault("H1b", CLAIM_QUESTIONS["H1b"])
    return {cid: texts[cid] for cid in sorted(texts)}


def claim_answers(
    metrics: dict | None = None, study: dict | None = None, models: str = "the shipped models"
) -> dict[str, str]:
    """
    One sentence per claim, in Markdown.

    Args:
        metrics: the shipped models' report, `docs/results/metrics.json` (`verdicts` and `settings`; `scorecard`,
            `weights`, `learning_curves` and `meta` where present).
        study: the architecture × corruption study, `docs/study/study.json` (`budgets`: images seen, seeds,
            verdicts and each cell's summary).
        models: what the report's models are called ("these models" in a report on other models).

    Returns:
        `{"H1": "**H1 — ...:** for the shipped models ...; in the study ....", "H1b": ..., "H2": ..., "H3": ...}`.
    """
    if not metrics and not study:
        raise ValueError("Give the report's metrics.json, the study's study.json, or both.")
    out = {}
    for cid, text in _claims(metrics, study).items():
        parts = [p for p in (metrics and shipped_answer(metrics, cid, models), study and study_answer(study, cid)) if p]
        if parts:
            out[cid] = f"**{cid} — {CLAIM_QUESTIONS.get(cid, text)}:** " + "; ".join(parts) + "."
    return out


# Where the committed results are, as the answer names them.
RESULT_FILES = ("docs/results/metrics.json", "docs/study/study.json")


def answer_markdown(metrics: dict | None = None, study: dict | None = None, files=RESULT_FILES) -> str:
    """The answer in Markdown: one line on what was measured (naming `files`, the report's and the study's), then one
    bullet (one sentence) per claim."""
    sources = []
    if metrics:
        sources.append(f"the shipped models ({files[0]})")
    if study:
        b = study["budgets"]
        budgets = (
            f"{len(b)} training budgets from {b[0]['images_seen']:,} to {b[-1]['images_seen']:,} images seen"
            if len(b) > 1
            else f"one training budget, {b[0]['images_seen']:,} images seen"
        )
        sources.append(
            f"the architecture × corruption study, {budgets}, on the first {study['n_images']:,} test digits "
            f"({files[1]})"
        )
    lines = [f"Each claim of the original study, answered by {join_words(sources)}:", ""]
    lines += [f"- {sentence}" for sentence in claim_answers(metrics, study).values()]
    return "\n".join(lines) + "\n"


def answer_block(
    metrics: dict | None = None, study: dict | None = None, heading: str = "## The answers", files=RESULT_FILES
) -> str:
    """`answer_markdown` under `heading`, between the markers the README and docs/RESULTS.md carry."""
    return f"{ANSWER_START}\n{heading}\n\n{answer_markdown(metrics, study, files)}{ANSWER_END}\n"


def replace_answer_block(text: str, block: str) -> str:
    """`text` (the README) with its answer block, markers included, replaced by `block` (`answer_block`'s)."""
    pattern = re.compile(r"<!-- answer:start.*?-->.*?" + re.escape(ANSWER_END) + r"\n?", re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"No answer block to replace: put {ANSWER_START!r} and {ANSWER_END!r} where it goes.")
    return pattern.sub(lambda _: block, text, count=1)
