"""The architecture × corruption grid: each run's value of every measure, paired t-intervals over seeds of every cell
mean and effect, and a verdict per claim and measure. Pure: arrays and dicts in, dicts out (`mae_hf.study` does the
files).

The grid's four cells are keyed `"{architecture}_{corruption}"` with architecture `vit` / `cnn` and corruption
`mask` / `noise`: `vit_mask` is the MAE and `cnn_noise` the DAE of the study; `vit_noise` and `cnn_mask` are the
controls. For a measure m with cell means vm, vn, cm, cn:

- architecture effect A = (vm + vn - cm - cn) / 2 (ViT minus CNN, averaged over corruptions),
- corruption effect C = (vm + cm - vn - cn) / 2 (masking minus noise, averaged over architectures),
- interaction I = (vm - vn) - (cm - cn),
- the study's contrast D = vm - cn (its MAE minus its DAE), and exactly D = A + C,
- the simple effects: masking − noise within the ViT (vm - vn = C + I/2) and within the CNN (cm - cn = C - I/2),
  ViT − CNN within masking (vm - cm = A + I/2) and within noise (vn - cn = A - I/2).

Intervals rest on seeds, the unit of replication. Each run (one cell, one seed) gives one value of a measure: its
per-image values on the test images reduced as `MEASURES` says (a mean over images, or over classes of the class
means), or its one scalar. Seed k of every cell is paired (seed k sets the initialisation, data order and training
corruption of all four cells), so an effect's value at seed k is the same combination of the four cells' values at
seed k, and its interval is the t-interval of those S values (`scipy.stats.t`, S − 1 degrees of freedom). The test
images are the same for every run, so the intervals say how much another set of training runs would move a number
on these test images. With fewer than `MIN_SEEDS` seeds nothing is tested; an interval of zero width (identical
values at every seed) is never significant.
"""

import numpy as np
from scipy import stats

from .readout import READOUT_MEASURES
from .weights import DEFAULT_EPS_ABS, DEFAULT_EPS_REL

__all__ = [
    "ARCHITECTURES",
    "GRID_CORRUPTIONS",
    "CELLS",
    "MIN_SEEDS",
    "CONFIDENCE",
    "MEASURES",
    "CLAIMS",
    "EFFECTS",
    "CAPACITY_CELLS",
    "CAPACITY_EFFECTS",
    "MAIN_EFFECTS",
    "SIMPLE_EFFECTS",
    "register_measure",
    "claim_direction",
    "seed_values",
    "t_interval",
    "is_significant",
    "summarize_cells",
    "effects",
    "claim_verdicts",
]

ARCHITECTURES = ("vit", "cnn")
GRID_CORRUPTIONS = ("mask", "noise")
CELLS = tuple(f"{a}_{c}" for a in ARCHITECTURES for c in GRID_CORRUPTIONS)  # vit_mask, vit_noise, cnn_mask, cnn_noise
MIN_SEEDS = 3  # fewer seeds: a number, not a verdict
CONFIDENCE = 0.95

# name: (how per-run values reduce, +1 if higher is better / tighter, description). "mean": mean over images;
# "class_mean": mean over classes of the per-class mean over images; "scalar": one value per run. A measure the
# analyses hold but this table lacks is reduced by its shape (per-image values: "mean"; one value per run:
# "scalar") and shown, but bears on no claim; `register_measure` adds one with its direction and claim.
MEASURES: dict[str, tuple[str, int, str]] = {
    "psnr": ("mean", +1, "PSNR (dB) under the model's own corruption, whole image (masking: visible pixels pasted)"),
    "ssim": ("mean", +1, "SSIM under the model's own corruption, same image as PSNR"),
    "psnr_masked": ("mean", +1, "PSNR (dB) of every model on the same masked images, masked pixels only"),
    "psnr_noisy": ("mean", +1, "PSNR (dB) of every model on the same noisy images, whole image"),
    "tsne_radius": ("class_mean", -1, "mean class radius in the 2-D t-SNE map (the study's measure)"),
    "original_radius": ("class_mean", -1, "mean class radius in the latent space itself (units differ by model)"),
    "scale_free_radius": ("class_mean", -1, "original-space radius / mean distance between class centroids"),
    "silhouette": ("mean", +1, "silhouette of the classes in the latent space"),
    "knn_accuracy": ("mean", +1, "5-NN accuracy (fit on train latents)"),
    "probe_accuracy": ("mean", +1, "linear-probe accuracy (fit on train latents)"),
    "near_zero_relative": (
        "scalar",
        +1,
        f"fraction of weights with |w| < {DEFAULT_EPS_REL} x their layer's std, trained",
    ),
    "near_zero_relative_vs_init": ("scalar", +1, "the same, trained minus at initialisation"),
    "near_zero_absolute": ("scalar", +1, f"fraction of weights with |w| < {DEFAULT_EPS_ABS}, trained"),
    # the field's readouts (`mae_hf.analysis.readout`), one accuracy per run on the study's test images
    **{name: ("scalar", +1, words) for name, words in READOUT_MEASURES.items()},
}

# The study's claims, each judged on the measures listed; `sign` orients the MAE-minus-DAE contrast so that
# positive means "as claimed" (H2 says the DAE has more near-zero weights, so it is DAE minus MAE there).
CLAIMS: dict[str, dict] = {
    "H1": {
        "claim": "The MAE's latent classes form tighter clusters than the DAE's",
        "measures": ["tsne_radius", "original_radius", "scale_free_radius", "silhouette"],
    },
    "H1b": {
        "claim": "The MAE's latents carry the class better (ours: the question H1 stands in for)",
        "measures": ["knn_accuracy", "probe_accuracy", *READOUT_MEASURES],
    },
    "H2": {
        "claim": "The DAE has more near-zero weights than the MAE",
        "measures": ["near_zero_relative", "near_zero_relative_vs_init", "near_zero_absolute"],
        "sign": -1,
    },
    "H3": {
        "claim": "The MAE reconstructs better than the DAE",
        "measures": ["psnr", "ssim", "psnr_masked", "psnr_noisy"],
    },
}

_VM, _VN, _CM, _CN = CELLS
# Each effect as weights on the four cells' values (the same weights at every seed, so effects are paired).
MAIN_EFFECTS: dict[str, dict[str, float]] = {
    "architecture": {_VM: 0.5, _VN: 0.5, _CM: -0.5, _CN: -0.5},
    "corruption": {_VM: 0.5, _VN: -0.5, _CM: 0.5, _CN: -0.5},
    "interaction": {_VM: 1.0, _VN: -1.0, _CM: -1.0, _CN: 1.0},
    "study_contrast": {_VM: 1.0, _CN: -1.0},
}
SIMPLE_EFFECTS: dict[str, dict[str, float]] = {
    "masking_in_vit": {_VM: 1.0, _VN: -1.0},
    "masking_in_cnn": {_CM: 1.0, _CN: -1.0},
    "vit_in_mask": {_VM: 1.0, _CM: -1.0},
    "vit_in_noise": {_VN: 1.0, _CN: -1.0},
}
EFFECTS = MAIN_EFFECTS | SIMPLE_EFFECTS
# The capacity control (cells `vit_small_mask`, `vit_small_noise`: a ViT of the CNN's parameter count), where the
# study has it: the ViT against the CNN at equal capacity within each corruption, and what the full ViT's capacity
# adds within each. Where "architecture" carries a verdict and the equal-capacity contrast agrees, it is the
# architecture; where only the full ViT's does, it is capacity.
CAPACITY_CELLS = ("vit_small_mask", "vit_small_noise")
CAPACITY_EFFECTS: dict[str, dict[str, float]] = {
    "small_vit_in_mask": {"vit_small_mask": 1.0, _CM: -1.0},
    "small_vit_in_noise": {"vit_small_noise": 1.0, _CN: -1.0},
    "capacity_in_vit_mask": {_VM: 1.0, "vit_small_mask": -1.0},
    "capacity_in_vit_noise": {_VN: 1.0, "vit_small_noise": -1.0},
}


def register_measure(name: str, reduction: str, direction: int, description: str, claim: str | None = None) -> None:
    """
    Add a measure to `MEASURES` (a new scalar per run, a new per-image score), and to a claim's measures.

    Args:
        reduction: "mean", "class_mean" or "scalar" (see `MEASURES`). direction: +1 if higher is better.
        claim: a key of `CLAIMS` the measure bears on, or None.
    """
    if reduction not in ("mean", "class_mean", "scalar"):
        raise ValueError(f"A measure reduces by 'mean', 'class_mean' or 'scalar'; got {reduction!r}.")
    if direction not in (1, -1):
        raise ValueError(f"direction is +1 (higher is better) or -1 (lower is better); got {direction!r}.")
    if claim is not None and claim not in CLAIMS:
        raise ValueError(f"No claim {claim!r}; the claims are {', '.join(CLAIMS)}.")
    MEASURES[name] = (reduction, direction, description)
    if claim is not None and name not in CLAIMS[claim]["measures"]:
        CLAIMS[claim]["measures"].append(name)


def claim_direction(claim: str, measure: str) -> str:
    """What the claim predicts for a measure, as the report's verdict rows say it: "mae > dae", "mae < dae",
    "dae > mae" (H2 names the DAE first) or "dae < mae"."""
    sign = CLAIMS[claim].get("sign", 1)
    higher = sign * MEASURES[measure][1] > 0  # the MAE's value is predicted higher
    if sign > 0:
        return "mae > dae" if higher else "mae < dae"
    return "dae < mae" if higher else "dae > mae"


def _reduction(name: str, values: np.ndarray) -> str:
    """One value per run already ((S,)) needs no reduction; per-image values ((S, N)) reduce as `MEASURES` says, a
    measure it does not list by the mean over images."""
    if values.ndim == 1:
        return "scalar"
    reduction = MEASURES[name][0] if name in MEASURES else "mean"
    return "mean" if reduction == "scalar" else reduction


def _reduce(kind: str, values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One value per run from `values` (S, N) per image (or (S,) scalars): (S,)."""
    if kind == "scalar":
        return values
    if kind == "mean":
        return values.mean(-1)
    per_class = [values[:, labels == c].mean(-1) for c in np.unique(labels)]  # K × (S,)
    return np.mean(per_class, axis=0)


def seed_values(runs: dict[str, dict[str, np.ndarray]], labels: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """
    Each run's value of every measure.

    Args:
        runs: `{cell: {measure: (S, N) per-image values, or (S,) per-run scalars}}`, seeds in the same order in
            every cell, images in the same order in every run.
        labels: (N,) class of each test image (for the per-class radii).

    Returns:
        `{cell: {measure: (S,) one value per seed}}`.
    """
    labels = np.asarray(labels)
    out: dict[str, dict[str, np.ndarray]] = {}
    n_seeds = None
    for cell, measures in runs.items():
        out[cell] = {}
        for name, values in measures.items():
            v = np.asarray(values, dtype=np.float64)
            if n_seeds is not None and v.shape[0] != n_seeds:
                raise ValueError(f"{cell}/{name}: {v.shape[0]} runs, but the other measures have {n_seeds} seeds.")
            n_seeds = v.shape[0]
            if v.ndim == 2 and v.shape[1] != len(labels):
                raise ValueError(f"{cell}/{name}: {v.shape[1]} per-image values for {len(labels)} labels.")
            out[cell][name] = _reduce(_reduction(name, v), v, labels)
    return out


def t_interval(per_seed: np.ndarray, confidence: float = CONFIDENCE) -> dict:
    """
    The mean over seeds and its t-interval (S - 1 degrees of freedom).

    Args:
        per_seed: (S,) one value per seed (of a cell, or of an effect computed seed by seed).

    Returns:
        `{"estimate", "ci_low", "ci_high", "n_seeds", "per_seed", "significant"}`; with one seed the interval is
        None (no spread to measure); with identical values it has zero width. `significant`: see `is_significant`.
    """
    v = np.asarray(per_seed, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("A t-interval needs at least one seed's value.")
    mean = float(v.mean())
    entry = {"estimate": mean, "ci_low": None, "ci_high": None, "n_seeds": int(v.size)}
    if v.size > 1:
        # values equal up to rounding (the same weights at every seed): zero width, not a spread of 1e-17
        flat = np.ptp(v) <= 1e-12 * max(1.0, float(np.abs(v).max()))
        sem = 0.0 if flat else float(v.std(ddof=1) / np.sqrt(v.size))
        half = float(stats.t.ppf(0.5 + confidence / 2, df=v.size - 1)) * sem
        entry["ci_low"], entry["ci_high"] = mean - half, mean + half
    entry["per_seed"] = [float(x) for x in v]
    entry["significant"] = is_significant(entry)
    return entry


def is_significant(entry: dict) -> bool:
    """Whether an interval excludes 0: only with at least `MIN_SEEDS` seeds and a width above zero."""
    lo, hi = entry.get("ci_low"), entry.get("ci_high")
    if entry.get("n_seeds", 0) < MIN_SEEDS or lo is None or hi is None or not hi > lo:
        return False
    return bool(lo > 0 or hi < 0)


def summarize_cells(values: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, dict]]:
    """
    Mean over seeds and 95% t-interval of every measure per cell.

    Args:
        values: `seed_values`' result.

    Returns:
        `{cell: {measure: t_interval(...)}}`.
    """
    return {cell: {name: t_interval(v) for name, v in measures.items()} for cell, measures in values.items()}


def effects(values: dict[str, dict[str, np.ndarray]]) -> dict[str, dict]:
    """
    The two-way effect table: for each measure, the architecture (ViT − CNN), corruption (masking − noise) and
    interaction effects, the study's contrast (MAE − DAE = architecture + corruption) and the four simple effects
    (`SIMPLE_EFFECTS`), each computed seed by seed (paired) with its t-interval.

    Args:
        values: `seed_values`' result, with the four cells of `CELLS` (other cells are left out here).

    Returns:
        `{measure: {effect: t_interval(...)}}` for the effects of `EFFECTS`, and of `CAPACITY_EFFECTS` when
        `values` has the capacity cells.
    """
    missing = [c for c in CELLS if c not in values]
    if missing:
        raise ValueError(f"The grid needs all four cells; missing {missing}.")
    table = EFFECTS | (CAPACITY_EFFECTS if all(c in values for c in CAPACITY_CELLS) else {})
    out = {}
    for name in values[CELLS[0]]:
        out[name] = {
            effect: t_interval(sum(w * values[cell][name] for cell, w in weights.items()))
            for effect, weights in table.items()
        }
    return out


def _attribution(sign: int, table: dict) -> str:
    parts = [
        label
        for label in ("architecture", "corruption")
        if table[label]["significant"] and sign * table[label]["estimate"] > 0
    ]
    return " and ".join(parts) if parts else "neither main effect alone"


def _verdict(contrast: dict, sign: int) -> str:
    if contrast["n_seeds"] < MIN_SEEDS:
        return "not tested"
    if not contrast["significant"]:
        return "not shown"
    return "holds" if sign * contrast["estimate"] > 0 else "reversed"


def claim_verdicts(summary: dict[str, dict[str, dict]], effect_table: dict[str, dict]) -> dict[str, dict]:
    """
    A verdict per claim and measure from the effect table: every measure that bears on the claim, with the MAE's and
    the DAE's values and their difference, each with its interval over seeds.

    For each measure the study's contrast, MAE − DAE, decides: **holds** (its interval excludes 0 on the side the
    claim predicts), **reversed** (it excludes 0 on the other side), **not shown** (it contains 0, or has zero
    width) or **not tested** (fewer than `MIN_SEEDS` seeds). Where the interaction is significant and larger than a
    main effect (|I| > |A| or |I| > |C|), one factor's effect changes with the other: the row carries the four simple
    effects (`SIMPLE_EFFECTS`) and no `due_to` (a main effect would misdescribe the cells). Otherwise, where the
    contrast holds or is reversed, `due_to` names the main effect(s) significant in the same direction
    ("architecture", "corruption", "architecture and corruption" or "neither main effect alone").
    A claim's `verdict` is that of its measures where they agree ("holds", "reversed", "not shown", "not tested"),
    else "mixed"; the measures say which.

    Args:
        summary: `summarize_cells`' result. effect_table: `effects`' result.

    Returns:
        `{claim_id: {"claim", "verdict", "n_seeds", "measures": {measure: {"claim" ("mae > dae", ... as
        `claim_direction`), "verdict", "n_seeds", "mae", "dae", "contrast", "architecture", "corruption",
        "interaction", "interaction_dominates", "simple_effects" (None or {effect: interval}), "capacity" (None,
        or the `CAPACITY_EFFECTS` where the study has the capacity cells), "due_to"}}}}`.
        Every number is as measured (MAE − DAE, not oriented); each is a `t_interval` entry.
    """
    out = {}
    for cid, spec in CLAIMS.items():
        rows = {}
        for name in spec["measures"]:
            if name not in effect_table:
                continue
            sign = spec.get("sign", 1) * MEASURES[name][1]
            t = effect_table[name]
            contrast = t["study_contrast"]
            verdict = _verdict(contrast, sign)
            dominates = t["interaction"]["significant"] and abs(t["interaction"]["estimate"]) > min(
                abs(t["architecture"]["estimate"]), abs(t["corruption"]["estimate"])
            )
            due_to = None
            if verdict in ("holds", "reversed") and not dominates:
                due_to = _attribution(sign if verdict == "holds" else -sign, t)
            rows[name] = {
                "claim": claim_direction(cid, name),
                "verdict": verdict,
                "n_seeds": contrast["n_seeds"],
                "mae": summary[_VM][name],
                "dae": summary[_CN][name],
                "contrast": contrast,
                "architecture": t["architecture"],
                "corruption": t["corruption"],
                "interaction": t["interaction"],
                "interaction_dominates": bool(dominates),
                "simple_effects": {k: t[k] for k in SIMPLE_EFFECTS} if dominates else None,
                "capacity": {k: t[k] for k in CAPACITY_EFFECTS if k in t} or None,
                "due_to": due_to,
            }
        if not rows:
            continue
        verdicts = {r["verdict"] for r in rows.values()}
        out[cid] = {
            "claim": spec["claim"],
            "verdict": verdicts.pop() if len(verdicts) == 1 else "mixed",
            "n_seeds": next(iter(rows.values()))["n_seeds"],
            "measures": rows,
        }
    return out
