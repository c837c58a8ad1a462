"""Tables from an analysis's metrics (`AnalysisResult.metrics` or `metrics.json`): `(headers, rows)` of strings,
built once here and shown by both the report and the app."""

import math

from .analysis.reconstruction import pairs_of
from .labels import CLAIM_DIRECTION_LABELS, MEASURE_LABELS, pair_label
from .registry import feature_label, model_label

__all__ = [
    "fmt",
    "mean_std",
    "digits_scored",
    "reconstruction_table",
    "latent_table",
    "radius_table",
    "class_radius_table",
    "weights_table",
    "measure_label",
    "TWO_MODELS",
    "verdict_summary",
    "verdict_table",
    "verdict_mark",
    "PLACEMENT_HEADERS",
    "MODEL_SOURCE_HEADERS",
    "readout_table",
]

# The headers of the app's two tables that come from a request or the loaded models rather than from an analysis's
# metrics: where the current picture lands in each t-SNE map, and where each model came from.
PLACEMENT_HEADERS = ["Features", "t-SNE x", "t-SNE y", "Neighbours' classes", "Most common class"]
MODEL_SOURCE_HEADERS = ["", "loaded from", "parameters", "architecture"]


def fmt(value, digits: int = 3) -> str:
    """A number with `digits` decimals; "—" for None, strings ("nan", "inf" from JSON) as they are."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    value = float(value)
    if math.isnan(value):
        return "—"
    return f"{value:.{digits}f}" if math.isfinite(value) else ("∞" if value > 0 else "−∞")


def mean_std(summary: dict, digits: int = 2) -> str:
    """`summarize_metrics`' mean ± std."""
    return f"{fmt(summary['mean'], digits)} ± {fmt(summary['std'], digits)}"


def digits_scored(n: int, split: str = "test") -> str:
    """Which digits a number covers, in words: "first 2,000 test digits". A model card scores every test digit, the
    report and the app the first `n`, so a number shown without its digits looks like a second figure for it."""
    return f"first {n:,} {split} digits"


def reconstruction_table(reconstruction: dict, split: str = "test") -> tuple[list[str], list[list[str]]]:
    """Each model under its own corruption and the other's: PSNR, SSIM, masked-region PSNR, input PSNR. Each row
    names the digits it was scored on (the first N of `split`), so it is not mistaken for a card's whole-test-set
    figure."""
    headers = [
        "Model and input (digits scored)",
        "PSNR (dB)",
        "SSIM",
        "Masked-region PSNR (dB)",
        "Corrupted input PSNR (dB)",
    ]
    rows, own = [], dict(reconstruction.get("own") or {"mae": "mask", "dae": "noise"})
    for model, corruption in pairs_of(reconstruction):
        c = reconstruction[model][corruption]
        n = c["psnr"].get("n")
        rows.append(
            [
                pair_label(model, corruption, own.get(model) == corruption)
                + (f", {digits_scored(n, split)}" if n is not None else ""),
                mean_std(c["psnr"]),
                mean_std(c["ssim"], 3),
                mean_std(c["psnr_masked"]) if "psnr_masked" in c else "—",
                mean_std(c["psnr_input"]),
            ]
        )
    return headers, rows


def latent_table(latents: dict) -> tuple[list[str], list[list[str]]]:
    """The measures of each feature set that do not depend on its scale, raw pixels as the baseline row."""
    headers = [
        "Features",
        "Size",
        "Scale-free radius (lower = tighter)",
        "Silhouette",
        "Trustworthiness",
        "5-NN accuracy",
        "Linear-probe accuracy",
    ]
    rows = [
        [
            feature_label(k),
            str(v["dim"]),
            fmt(v["scale_free_radius"]["mean"]),
            fmt(v["silhouette"]),
            fmt(v["trustworthiness"]),
            fmt(v["knn_accuracy"]),
            fmt(v["linear_probe_accuracy"]),
        ]
        for k, v in latents.items()
    ]
    return headers, rows


def radius_table(latents: dict) -> tuple[list[str], list[list[str]]]:
    """Mean per-class radius of each feature set in t-SNE space (the study's), in the features, and scale-free."""
    headers = [
        "Features",
        "t-SNE radius (the study's)",
        "Radius in the features",
        "Scale-free radius",
        "Scale-free radius in t-SNE",
    ]
    rows = [
        [
            feature_label(k),
            fmt(v["tsne_radius"]["mean"], 2),
            fmt(v["original_radius"]["mean"], 2),
            fmt(v["scale_free_radius"]["mean"]),
            fmt(v["tsne_scale_free_radius"]["mean"]),
        ]
        for k, v in latents.items()
    ]
    return headers, rows


def class_radius_table(latents: dict, measure: str, keys: tuple[str, ...], digits: int = 2) -> tuple[list, list]:
    """One row per class: `measure` (`tsne_radius`, `original_radius`, `scale_free_radius`) of each feature set."""
    names = list(latents[keys[0]][measure]["per_class"])
    headers = ["Class", *(feature_label(k) for k in keys)]
    rows = [[c, *(fmt(latents[k][measure]["per_class"][c], digits) for k in keys)] for c in names]
    return headers, rows


def weights_table(weights: dict) -> tuple[list[str], list[list[str]]]:
    """The share of near-zero weights of every model, at initialisation and trained (thresholds in the headers)."""
    headers = ["Model", "State", "Weights", f"|w| < {weights['eps_abs']}", f"|w| < {weights['eps_rel']} × layer std"]
    models = [k for k, v in weights.items() if isinstance(v, dict) and "trained" in v]
    rows = [
        [
            model_label(name),
            state,
            f"{weights[name][state]['n_weights']:,}",
            fmt(weights[name][state]["near_zero_fraction"]["absolute"], 4),
            fmt(weights[name][state]["near_zero_fraction"]["relative"], 4),
        ]
        for name in models
        for state in ("init", "trained")
    ]
    return headers, rows


def verdict_mark(holds: bool) -> str:
    """Words every font can show (no emoji): whether these two models' numbers fall on the claimed side."""
    return "yes" if holds else "no"


def measure_label(row: dict) -> str:
    """A verdict row's measure in words, with the MAE features or the inputs it was taken on: "silhouette — MAE CLS
    token", "PSNR (dB) — MAE: masked, DAE: noisy"."""
    label = MEASURE_LABELS.get(row["measure"], row["measure"])
    on = feature_label(row["features"]) if row.get("features") else row.get("corruption")
    return f"{label} — {on}" if on else label


# The report's verdicts compare one trained model of each method (`mae_hf.analysis.verdicts`): said wherever they
# are shown, so that no one reads them as a test of the methods.
TWO_MODELS = (
    "These two trained models, one seed each: no interval, so this describes these two models and tests nothing "
    "about the methods (the architecture × corruption study compares those over seeds)"
)


def verdict_summary(verdict: dict) -> str:
    """Where these two models' numbers fall on the claimed side, in words, per MAE feature set where the rows have
    one ("...: on the claimed side with MAE CLS token on every measure; with ... on silhouette only"), else by
    measure; no count of measures, which would read as a vote."""
    rows = verdict["measures"]
    if all(r.get("features") for r in rows):
        parts = []
        for f in dict.fromkeys(r["features"] for r in rows):
            group = [r for r in rows if r["features"] == f]
            held = [MEASURE_LABELS.get(r["measure"], r["measure"]) for r in group if r["holds"]]
            where = (
                "on every measure"
                if len(held) == len(group)
                else "on no measure"
                if not held
                else f"on {', '.join(held)} only"
            )
            parts.append(f"with {feature_label(f)} {where}")
        return f"{TWO_MODELS}: on the claimed side {'; '.join(parts)}."
    held = [measure_label(r) for r in rows if r["holds"]]
    missed = [measure_label(r) for r in rows if not r["holds"]]
    parts = ([f"on the claimed side under {'; '.join(held)}"] if held else []) + (
        [f"not under {'; '.join(missed)}"] if missed else []
    )
    return f"{TWO_MODELS}: {'; '.join(parts)}."


def verdict_table(verdict: dict) -> tuple[list[str], list[list[str]]]:
    """One claim's measures, in words: both models' values, what the claim predicts, and whether these two models'
    numbers fall on that side (the measures' keys stay in `metrics.json`)."""
    headers = ["Measure", "MAE features / input", "DAE", "MAE", "The claim says", "These two models"]
    rows = [
        [
            MEASURE_LABELS.get(r["measure"], r["measure"]),
            feature_label(r["features"]) if r.get("features") else r.get("corruption", ""),
            fmt(r["dae"], 4),
            fmt(r["mae"], 4),
            CLAIM_DIRECTION_LABELS.get(r["claim"], r["claim"]),
            verdict_mark(r["holds"]),
        ]
        for r in verdict["measures"]
    ]
    return headers, rows


def readout_table(readouts: dict[str, dict]) -> tuple[list[str], list[list[str]]]:
    """Models' kept readouts (`{model name: its folder's readout_results.json}`, `mae_hf.cards.save_readout`) as one
    table: each model, its random-init twin, then the raw pixels once, with their test top-1 accuracies. Readouts of
    different datasets or settings do not share a table (`ValueError`)."""
    from .analysis.readout import KNN_SETTINGS, LOW_LABEL_FRACTIONS, READOUT_MEASURES, knn_key, probe_key

    short = {  # the column headers (READOUT_MEASURES has them in full)
        **{knn_key(k): f"{k}-NN (cosine, T={t:g})" for k, t in KNN_SETTINGS},
        probe_key(): "linear probe",
        **{probe_key(f): f"probe on {f:.0%} of labels" for f in LOW_LABEL_FRACTIONS},
    }

    if not readouts:
        raise ValueError("No readouts to tabulate: name at least one model folder with a readout_results.json.")
    first = next(iter(readouts.values()))["settings"]
    for name, readout in readouts.items():
        if readout["settings"] != first:
            raise ValueError(
                f"{name}'s readouts were measured with other settings than the first model's ({readout['settings']} "
                f"vs {first}); rerun `mae-hf readout` on all the models at once."
            )
    rows_by_label = {}
    for name, readout in readouts.items():
        rows_by_label[f"{model_label(name)} ({feature_label(readout['model']['features'])})"] = readout["model"]
        rows_by_label[f"{model_label(name)} with random weights"] = readout["controls"]["random init"]
    raw = next(iter(readouts.values()))["controls"]["raw pixels"]
    rows_by_label[feature_label(raw["features"])] = raw
    measures = [m for m in READOUT_MEASURES if m in raw["accuracy"]]
    headers = ["Features", "Parameters", *(short.get(m, m) for m in measures)]
    rows = [
        [
            label,
            f"{row['num_parameters']:,}" if row.get("num_parameters") else "—",
            *(fmt(row["accuracy"][m], 4) if m in row["accuracy"] else "—" for m in measures),
        ]
        for label, row in rows_by_label.items()
    ]
    return headers, rows


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """`(headers, rows)` as a Markdown table (cells' `|` escaped), the one way the report and the app write one."""

    def line(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), "|" + " --- |" * len(headers), *(line(r) for r in rows)])
