"""The study's numbers and verdicts in words: a measure's value, a difference with its interval over seeds, one
measure's verdict and one claim's verdict at one training budget, as sentences. Pure and without torch (the app's
page and `mae-hf answer` use it before any model loads); `mae_hf.study` stores the sentences in `study.json`, the
study's page and the answers quote them.

The verdict dicts are those of `mae_hf.analysis.factorial.claim_verdicts`: every number is a `t_interval` entry
(`estimate`, `ci_low`, `ci_high`, `n_seeds`, `significant`).
"""

from .labels import MEASURE_LABELS

__all__ = [
    "STUDY_MEASURE_WORDS",
    "DIGITS",
    "EFFECT_WORDS",
    "VERDICT_WORDS",
    "measure_words",
    "value_text",
    "interval_text",
    "seeds_text",
    "join_words",
    "measure_sentence",
    "claim_clause",
    "claim_sentence",
    "crossing_text",
    "verdict_spans",
    "untested_text",
]

# The study's measures whose table label leaves out what a sentence needs (factorial.MEASURES says what each is).
STUDY_MEASURE_WORDS = {
    "tsne_radius": "t-SNE radius",
    "psnr": "PSNR under each model's own corruption",
    "ssim": "SSIM under each model's own corruption",
    "psnr_masked": "masked-region PSNR on the same masked images",
}
# Decimals of each measure in tables and sentences (3 where not listed).
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
EFFECT_WORDS = {
    "architecture": "ViT − CNN",
    "corruption": "masking − noise",
    "interaction": "the interaction",
    "study_contrast": "MAE − DAE",
    "masking_in_vit": "masking − noise in the ViT",
    "masking_in_cnn": "masking − noise in the CNN",
    "vit_in_mask": "ViT − CNN under masking",
    "vit_in_noise": "ViT − CNN under noise",
    "small_vit_in_mask": "CNN-sized ViT − CNN under masking",
    "small_vit_in_noise": "CNN-sized ViT − CNN under noise",
    "capacity_in_vit_mask": "full − CNN-sized ViT under masking",
    "capacity_in_vit_noise": "full − CNN-sized ViT under noise",
}
FACTOR_WORDS = {
    "architecture": "the architecture (ViT − CNN)",
    "corruption": "the corruption (masking − noise)",
    "architecture and corruption": "both the architecture and the corruption",
    "neither main effect alone": "neither main effect alone",
}
VERDICT_WORDS = {
    "holds": "holds",
    "reversed": "is reversed",
    "not shown": "is not shown",
    "not tested": "is not tested",
    "mixed": "is mixed",
}


def measure_words(measure: str) -> str:
    """A measure's name in a sentence: "PSNR under each model's own corruption", "5-NN accuracy"."""
    return STUDY_MEASURE_WORDS.get(measure) or MEASURE_LABELS.get(measure, measure).replace(" (dB)", "")


def value_text(measure: str, value: float, signed: bool = False) -> str:
    """A value in the measure's units: "17.94 dB", "8.2%" (near-zero fractions), "0.961"; `signed`: "+0.049"."""
    sign = "+" if signed else ""
    if measure.startswith("near_zero"):
        return f"{100 * value:{sign}.1f}%"
    text = f"{value:{sign}.{DIGITS.get(measure, 3)}f}"
    return f"{text} dB" if measure.startswith("psnr") else text


def _bare(measure: str, value: float) -> str:
    return value_text(measure, value, signed=True).replace(" dB", "")


def interval_text(measure: str, entry: dict) -> str:
    """A difference and its interval over seeds: "+0.025 [−0.005, +0.050]", "+0.48 dB [+0.10, +0.86]"; with one
    seed only the number, "+0.021 (1 seed, no interval)"."""
    est = value_text(measure, entry["estimate"], signed=True)
    if entry.get("ci_low") is None or entry.get("ci_high") is None:
        return f"{est} ({seeds_text(entry.get('n_seeds', 1))}, no interval)"
    unit = " dB" if est.endswith(" dB") else ""
    return f"{est.replace(' dB', '')}{unit} [{_bare(measure, entry['ci_low'])}, {_bare(measure, entry['ci_high'])}]"


def seeds_text(n: int) -> str:
    return f"{n} seed{'s' * (n != 1)}"


def join_words(parts: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _effects_clause(measure: str, row: dict) -> str:
    """What the factors do: the simple effects where the interaction is larger than a main effect, else the main
    effect(s) that carry a significant contrast."""
    simple = row.get("simple_effects")
    if simple:
        parts = [f"{EFFECT_WORDS[k]} {interval_text(measure, e)}" for k, e in simple.items()]
        return (
            "; the interaction is significant and larger than a main effect, so each factor within the other: "
            + join_words(parts)
        )
    if row.get("due_to") and row["due_to"] != "neither main effect alone":
        factors = [f for f in ("architecture", "corruption") if f in row["due_to"]]
        numbers = ", ".join(f"{EFFECT_WORDS[f]} {interval_text(measure, row[f])}" for f in factors)
        return f"; carried by {FACTOR_WORDS[row['due_to']]}: {numbers}"
    if row.get("due_to"):
        return "; neither main effect alone carries it"
    return ""


def measure_sentence(measure: str, row: dict) -> str:
    """
    One measure of a claim at one budget, in words: both models' values, their difference with its interval over
    seeds, the verdict, and what the factors do ("5-NN accuracy: MAE 0.916, DAE 0.891, MAE − DAE +0.025 [−0.005,
    +0.050] over 3 seeds: not shown; the interaction is larger than a main effect, so ...").
    """
    n = row["n_seeds"]
    head = (
        f"{measure_words(measure)}: MAE {value_text(measure, row['mae']['estimate'])}, "
        f"DAE {value_text(measure, row['dae']['estimate'])}, MAE − DAE {interval_text(measure, row['contrast'])}"
    )
    if row["verdict"] == "not tested":
        return f"{head}: {seeds_text(n)}, not tested"
    return (
        f"{head} over {seeds_text(n)}: {row['verdict']}"
        + _effects_clause(measure, row)
        + _capacity_clause(measure, row)
    )


def _capacity_clause(measure: str, row: dict) -> str:
    """The capacity control where the study has it: the architecture at equal size, and what the size adds."""
    capacity = row.get("capacity")
    if not capacity:
        return ""
    return "; at equal capacity: " + join_words(
        [f"{EFFECT_WORDS[k]} {interval_text(measure, e)}" for k, e in capacity.items()]
    )


def claim_clause(verdict: dict) -> str:
    """What a tested claim's measures say, grouped by verdict, each MAE − DAE difference with its interval: "holds on
    linear-probe accuracy (+0.054 [+0.008, +0.100]) and is not shown on 5-NN accuracy (+0.025 [-0.043, +0.093])"."""
    groups: dict[str, list[str]] = {}
    for m, r in verdict["measures"].items():
        groups.setdefault(r["verdict"], []).append(f"{measure_words(m)} ({interval_text(m, r['contrast'])})")
    order = [v for v in ("holds", "reversed", "not shown", "not tested") if v in groups]
    return join_words([f"{VERDICT_WORDS[v]} on {join_words(groups[v])}" for v in order])


def claim_sentence(verdict: dict, images_seen: int) -> str:
    """
    One claim at one budget in one sentence: the budget, the seeds, and each measure's MAE − DAE difference with its
    interval, grouped by verdict ("At 240,000 images seen (3 seeds; MAE − DAE, 95% interval over seeds), the claim
    holds on linear-probe accuracy (+0.054 [+0.008, +0.100]) and is not shown on 5-NN accuracy (+0.025 [-0.043,
    +0.093]).").
    With fewer seeds than a test needs, the numbers without a verdict ("At 600,000 images seen, 1 seed: not
    tested (MAE − DAE ...)").
    """
    rows, n = verdict["measures"], verdict["n_seeds"]
    where = f"At {images_seen:,} images seen"
    if verdict["verdict"] == "not tested":
        numbers = join_words(
            [f"{measure_words(m)} {value_text(m, r['contrast']['estimate'], True)}" for m, r in rows.items()]
        )
        return f"{where}, {seeds_text(n)}: not tested (MAE − DAE {numbers}, no interval)."
    return f"{where} ({seeds_text(n)}; MAE − DAE, 95% interval over seeds), the claim {claim_clause(verdict)}."


def crossing_text(measure: str, row: dict) -> str | None:
    """Where the factors cross on a measure (a factor's two simple effects are both significant, with opposite signs),
    each simple effect with its interval: "on 5-NN accuracy masking − noise is +0.158 [...] in the ViT and -0.074
    [...] in the CNN"; None where the row has no simple effects or they do not cross."""
    s = row.get("simple_effects")
    if not s:
        return None
    parts = []
    for a, b, within in (
        ("masking_in_vit", "masking_in_cnn", ("in the ViT", "in the CNN")),
        ("vit_in_mask", "vit_in_noise", ("under masking", "under noise")),
    ):
        if s[a]["significant"] and s[b]["significant"] and s[a]["estimate"] * s[b]["estimate"] < 0:
            factor = EFFECT_WORDS[a].split(" in ")[0].split(" under ")[0]
            parts.append(
                f"{factor} is {interval_text(measure, s[a])} {within[0]} and {interval_text(measure, s[b])} {within[1]}"
            )
    return f"on {measure_words(measure)} {' while '.join(parts)}" if parts else None


def verdict_spans(budgets: list[dict], claim: str) -> str:
    """
    A claim's verdict budget by budget, a run of budgets with the same verdict named once: "is reversed at
    12,032–60,000 images seen and holds at 240,000 (3 seeds each); at 600,000–1,200,000, 1 seed: not tested".

    Args:
        budgets: the study's budgets (`images_seen`, `seeds`, `verdicts`), in order.
    """
    spans: list[tuple[str, list[dict]]] = []
    for b in budgets:
        if claim not in b["verdicts"]:
            continue
        verdict = b["verdicts"][claim]["verdict"]
        if spans and spans[-1][0] == verdict:
            spans[-1][1].append(b)
        else:
            spans.append((verdict, [b]))
    tested = [(v, bs) for v, bs in spans if v != "not tested"]
    untested = [b for v, bs in spans if v == "not tested" for b in bs]
    parts = []
    if tested:
        words = [
            f"{VERDICT_WORDS[v]} at {_span(bs)}" + (" images seen" if i == 0 else "")
            for i, (v, bs) in enumerate(tested)
        ]
        counts = {len(b["seeds"]) for _, bs in tested for b in bs}
        each = " each" if sum(len(bs) for _, bs in tested) > 1 else ""
        seeds = f"{seeds_text(counts.pop())}{each}" if len(counts) == 1 else f"{min(counts)}–{max(counts)} seeds"
        parts.append(f"{join_words(words)} ({seeds})")
    if untested:
        parts.append(untested_text(untested))
    return "; ".join(parts)


def untested_text(budgets: list[dict]) -> str:
    """Budgets with too few seeds for a verdict: "at 600,000–1,200,000, 1 seed: not tested"."""
    counts = sorted({len(b["seeds"]) for b in budgets})
    return f"at {_span(budgets)}, {join_words([seeds_text(c) for c in counts])}: not tested"


def _span(budgets: list[dict]) -> str:
    first, last = budgets[0]["images_seen"], budgets[-1]["images_seen"]
    return f"{first:,}" if first == last else f"{first:,}–{last:,}"
