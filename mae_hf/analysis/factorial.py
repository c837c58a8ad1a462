"""The architecture × corruption grid: paired hierarchical bootstrap over seeds and test images, the two-way effect
table and a verdict per claim of the study. Pure: arrays and dicts in, dicts out (`mae_hf.study` does the files).

The grid's four cells are keyed `"{architecture}_{corruption}"` with architecture `vit` / `cnn` and corruption
`mask` / `noise`: `vit_mask` is the MAE and `cnn_noise` the DAE of the study; `vit_noise` and `cnn_mask` are the
controls. For a measure m with cell means vm, vn, cm, cn:

- architecture effect A = (vm + vn - cm - cn) / 2 (ViT minus CNN, averaged over corruptions),
- corruption effect C = (vm + cm - vn - cn) / 2 (masking minus noise, averaged over architectures),
- interaction I = (vm - vn) - (cm - cn),
- the study's contrast D = vm - cn (its MAE minus its DAE), and exactly D = A + C.

So whatever difference the study saw splits into an architecture part and a corruption part; the verdicts say
which of them carries it.

Intervals: each bootstrap replicate draws the seeds with replacement and, within each drawn seed, the test images
with replacement; the same draw is used for every cell and measure (the cells share seeds and test images), so
effects are paired. Per-image values are held fixed (a resampled image keeps the distance to its class centroid,
its silhouette and its classifier outcome from the full-data fit). Measures without per-image values (weights)
resample seeds only. Percentile 95% intervals.
"""

import numpy as np

__all__ = [
    "ARCHITECTURES",
    "GRID_CORRUPTIONS",
    "CELLS",
    "MEASURES",
    "CLAIMS",
    "bootstrap_draws",
    "bootstrap_cells",
    "summarize_cells",
    "effects",
    "claim_verdicts",
]

ARCHITECTURES = ("vit", "cnn")
GRID_CORRUPTIONS = ("mask", "noise")
CELLS = tuple(f"{a}_{c}" for a in ARCHITECTURES for c in GRID_CORRUPTIONS)  # vit_mask, vit_noise, cnn_mask, cnn_noise

# name: (how per-run values reduce, +1 if higher is better / tighter, description). "mean": mean over images;
# "class_mean": mean over classes of the per-class mean over images; "scalar": one value per run.
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
    "near_zero_relative": ("scalar", +1, "fraction of weights with |w| < 0.01 x their layer's std, trained"),
    "near_zero_relative_vs_init": ("scalar", +1, "the same, trained minus at initialisation"),
    "near_zero_absolute": ("scalar", +1, "fraction of weights with |w| < 1e-3, trained"),
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
        "measures": ["knn_accuracy", "probe_accuracy"],
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


def bootstrap_draws(n_seeds: int, n_images: int, n_boot: int = 2000, seed: int = 0) -> dict[str, np.ndarray]:
    """
    The paired resampling plan shared by every cell and measure.

    Returns:
        `{"seeds": (n_boot, n_seeds) int, drawn seed positions; "weights": (n_boot, n_seeds, n_images) int, how
        often each image is drawn within each drawn seed}`.
    """
    if n_seeds < 1 or n_images < 1 or n_boot < 1:
        raise ValueError(f"Need at least one seed, image and replicate; got {n_seeds}, {n_images}, {n_boot}.")
    rng = np.random.default_rng(seed)
    seeds = rng.integers(n_seeds, size=(n_boot, n_seeds))
    weights = rng.multinomial(n_images, np.full(n_images, 1.0 / n_images), size=(n_boot, n_seeds))
    return {"seeds": seeds, "weights": weights}


def _reduce(kind: str, values: np.ndarray, labels: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """
    One statistic per run for `values` (S, N) (or (S,) for scalars) under image `weights` (..., N); without
    weights the full-data value. Returns an array of the weights' leading shape (or (S,)).
    """
    if kind == "scalar":
        return values
    w = np.ones(values.shape[-1]) if weights is None else weights
    if kind == "mean":
        return (w * values).sum(-1) / w.sum(-1)
    classes = np.unique(labels)
    onehot = (labels[:, None] == classes[None]).astype(np.float64)  # (N, K)
    num = (w * values) @ onehot  # (..., K)
    den = np.broadcast_to(w, values.shape if weights is None else w.shape) @ onehot
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = num / den
    return np.nanmean(per_class, axis=-1)


def bootstrap_cells(
    runs: dict[str, dict[str, np.ndarray]], labels: np.ndarray, draws: dict[str, np.ndarray]
) -> dict[str, dict[str, np.ndarray]]:
    """
    Bootstrap replicates of every measure in every cell.

    Args:
        runs: `{cell: {measure: (S, N) per-image values, or (S,) per-run scalars}}`, seeds in the same order in
            every cell, images in the same order in every run.
        labels: (N,) class of each test image (for the per-class radii).
        draws: from `bootstrap_draws(S, N, ...)`.

    Returns:
        `{cell: {measure: (n_boot,) replicate values}}` (mean over the drawn seeds of each run's statistic).
    """
    labels = np.asarray(labels)
    picked, weights = draws["seeds"], draws["weights"].astype(np.float64)  # (B, S), (B, S, N)
    out: dict[str, dict[str, np.ndarray]] = {}
    for cell, measures in runs.items():
        out[cell] = {}
        for name, values in measures.items():
            kind = MEASURES[name][0]
            v = np.asarray(values, dtype=np.float64)
            if v.shape[0] != picked.shape[1]:
                raise ValueError(f"{cell}/{name}: {v.shape[0]} runs, but the draws are for {picked.shape[1]} seeds.")
            if kind == "scalar":
                out[cell][name] = v[picked].mean(1)
            else:
                out[cell][name] = _reduce(kind, v[picked], labels, weights).mean(1)  # (B, S) → (B,)
    return out


def _interval(estimate: float, replicates: np.ndarray) -> dict[str, float]:
    lo, hi = np.percentile(replicates, [2.5, 97.5])
    return {"estimate": float(estimate), "ci_low": float(lo), "ci_high": float(hi)}


def summarize_cells(
    runs: dict[str, dict[str, np.ndarray]], labels: np.ndarray, replicates: dict[str, dict[str, np.ndarray]]
) -> dict[str, dict[str, dict]]:
    """
    Mean and 95% interval of every measure per cell.

    Returns:
        `{cell: {measure: {"estimate" (mean over seeds of the full-data value), "ci_low", "ci_high",
        "per_seed": [...]}}}`.
    """
    labels = np.asarray(labels)
    out: dict[str, dict[str, dict]] = {}
    for cell, measures in runs.items():
        out[cell] = {}
        for name, values in measures.items():
            per_seed = _reduce(MEASURES[name][0], np.asarray(values, dtype=np.float64), labels, None)
            out[cell][name] = _interval(float(np.mean(per_seed)), replicates[cell][name]) | {
                "per_seed": [float(v) for v in np.atleast_1d(per_seed)]
            }
    return out


def _contrasts(vm, vn, cm, cn) -> dict:
    return {
        "architecture": (vm + vn - cm - cn) / 2,
        "corruption": (vm + cm - vn - cn) / 2,
        "interaction": (vm - vn) - (cm - cn),
        "study_contrast": vm - cn,
    }


def effects(summary: dict[str, dict[str, dict]], replicates: dict[str, dict[str, np.ndarray]]) -> dict[str, dict]:
    """
    The two-way effect table: for each measure, the architecture (ViT − CNN), corruption (masking − noise) and
    interaction effects and the study's contrast (MAE − DAE = architecture + corruption), each with a 95% interval
    and whether the interval excludes 0.

    Returns:
        `{measure: {effect: {"estimate", "ci_low", "ci_high", "significant"}}}`.
    """
    missing = [c for c in CELLS if c not in summary]
    if missing:
        raise ValueError(f"The grid needs all four cells; missing {missing}.")
    out = {}
    for name in summary[CELLS[0]]:
        point = _contrasts(*(summary[c][name]["estimate"] for c in ("vit_mask", "vit_noise", "cnn_mask", "cnn_noise")))
        reps = _contrasts(*(replicates[c][name] for c in ("vit_mask", "vit_noise", "cnn_mask", "cnn_noise")))
        out[name] = {}
        for effect, estimate in point.items():
            entry = _interval(estimate, reps[effect])
            entry["significant"] = bool(entry["ci_low"] > 0 or entry["ci_high"] < 0)
            out[name][effect] = entry
    return out


def _attribution(sign: int, table: dict) -> str:
    parts = [
        label
        for key, label in (("architecture", "architecture"), ("corruption", "corruption"))
        if table[key]["significant"] and sign * table[key]["estimate"] > 0
    ]
    if not parts:
        return "neither main effect alone (interaction)" if table["interaction"]["significant"] else "not attributable"
    return " and ".join(parts)


def claim_verdicts(effect_table: dict[str, dict]) -> dict[str, dict]:
    """
    A verdict per claim and measure from the effect table.

    For each measure, the study's contrast (oriented so that positive = as claimed, with a measure's direction)
    decides: **holds** (its interval is above 0), **reversed** (below 0) or **not shown** (the interval contains 0).
    Where it holds (or is reversed), `due_to` names the main effect(s) significant in the claimed (or the opposite)
    direction: "architecture", "corruption", "architecture and corruption", or neither (then the interaction
    carries it).
    A claim's overall verdict: "holds" if every measure holds, "does not hold" if none does, else "mixed".

    Returns:
        `{claim_id: {"claim", "verdict", "measures": {measure: {"verdict", "due_to", "contrast", "architecture",
        "corruption", "interaction"}}}}`; contrast and effects are oriented (positive = as claimed).
    """
    out = {}
    for cid, spec in CLAIMS.items():
        rows = {}
        for name in spec["measures"]:
            if name not in effect_table:
                continue
            sign = spec.get("sign", 1) * MEASURES[name][1]
            t = effect_table[name]
            oriented = {
                k: {
                    "estimate": sign * v["estimate"],
                    "ci_low": sign * (v["ci_low"] if sign > 0 else v["ci_high"]),
                    "ci_high": sign * (v["ci_high"] if sign > 0 else v["ci_low"]),
                    "significant": v["significant"],
                }
                for k, v in t.items()
            }
            d = oriented["study_contrast"]
            verdict = "holds" if d["ci_low"] > 0 else "reversed" if d["ci_high"] < 0 else "not shown"
            due_to = {"holds": _attribution(1, oriented), "reversed": _attribution(-1, oriented)}.get(verdict)
            rows[name] = {
                "verdict": verdict,
                "due_to": due_to,
                "contrast": d,
                "architecture": oriented["architecture"],
                "corruption": oriented["corruption"],
                "interaction": oriented["interaction"],
            }
        if not rows:
            continue
        held = [r["verdict"] == "holds" for r in rows.values()]
        overall = "holds" if all(held) else "does not hold" if not any(held) else "mixed"
        out[cid] = {"claim": spec["claim"], "verdict": overall, "measures": rows}
    return out
