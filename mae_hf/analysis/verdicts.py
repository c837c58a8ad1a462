"""Verdicts on the study's three claims, computed from the measured numbers (nothing here is hard-coded).

- H1: MAE latents cluster by class more tightly than DAE latents.
- H2: the DAE has more near-zero weights (so it "learns less").
- H3: the MAE reconstructs better (PSNR/SSIM).

Each claim is checked under every measure that bears on it; a measure "holds" when the MAE (or for H2 the DAE)
is on the claimed side of the comparison. These verdicts compare two trained models, one of each method with one
seed each: a row has no interval (one run per method has no seed-to-seed spread), so it describes these two models
and tests nothing about the methods; the report and the answers say so (`mae_hf.tables.TWO_MODELS`). The methods
are compared over seeds in the architecture × corruption study (`mae_hf.analysis.factorial`), where an interval of
zero width or a budget with fewer than three seeds never makes a verdict.
"""

__all__ = ["CLAIMS", "h1_verdict", "h2_verdict", "h3_verdict", "compute_verdicts"]

CLAIMS = {
    "H1": "MAE latents cluster by class more tightly than DAE latents",
    "H2": "the DAE has more near-zero weights than the MAE (so it learns less)",
    "H3": "the MAE reconstructs better than the DAE (PSNR/SSIM)",
}

MAE_VARIANTS = ("mae_masked_flat", "mae_cls", "mae_mean")

# (metric key in latents[feature], which direction is "tighter/better", what it measures)
H1_MEASURES = (
    ("tsne_radius", "lower", "mean per-class radius in t-SNE space (the study's measure)"),
    ("original_radius", "lower", "mean per-class radius in the latent space itself (units differ between models)"),
    ("scale_free_radius", "lower", "radius / mean distance between class centroids, latent space"),
    ("silhouette", "higher", "silhouette score, latent space"),
    ("knn_accuracy", "higher", "5-NN accuracy, train → test"),
    ("linear_probe_accuracy", "higher", "linear-probe accuracy, train → test"),
)


def _row(measure: str, description: str, dae: float, mae: float, claim: str, **extra) -> dict:
    """
    One measure. `claim` is the comparison the claim predicts: `"mae < dae"`, `"mae > dae"` or `"dae > mae"`;
    it holds only when the comparison is strictly true.
    """
    holds = {"mae < dae": mae < dae, "mae > dae": mae > dae, "dae > mae": dae > mae}[claim]
    return {
        "measure": measure,
        "description": description,
        "dae": dae,
        "mae": mae,
        "claim": claim,
        "holds": bool(holds),
        **extra,
    }


def _summary(claim: str, rows: list[dict]) -> dict:
    return {
        "claim": CLAIMS[claim],
        "measures": rows,
        "holds_under": [
            f"{r['measure']}" + (f" ({r['features']})" if "features" in r else "") for r in rows if r["holds"]
        ],
        "fails_under": [
            f"{r['measure']}" + (f" ({r['features']})" if "features" in r else "") for r in rows if not r["holds"]
        ],
    }


def h1_verdict(latents: dict) -> dict:
    """
    Args:
        latents: `{feature_set: {"tsne_radius": {"mean": ..}, "original_radius": {"mean": ..},
            "scale_free_radius": {"mean": ..}, "silhouette": float, "knn_accuracy": float,
            "linear_probe_accuracy": float}}` for `dae` and each MAE variant present.

    Returns:
        `{"claim", "measures": [row, ...], "holds_under", "fails_under"}`; one row per measure and MAE variant.
    """
    rows = []
    for key, better, description in H1_MEASURES:
        for variant in MAE_VARIANTS:
            if variant not in latents:
                continue
            d, m = latents["dae"][key], latents[variant][key]
            d, m = (d["mean"], m["mean"]) if isinstance(d, dict) else (d, m)
            claim = "mae < dae" if better == "lower" else "mae > dae"
            rows.append(_row(key, description, float(d), float(m), claim, features=variant))
    return _summary("H1", rows)


def h2_verdict(weights: dict) -> dict:
    """
    Args:
        weights: `{model: {"trained": {"near_zero_fraction": {"absolute", "relative"}}, "init": {...}}}` for
            `dae` and `mae`.

    Returns:
        verdict rows: the trained fractions (absolute ε and relative to layer std), and the change from init.
    """
    rows = []
    for kind in ("absolute", "relative"):
        d = weights["dae"]["trained"]["near_zero_fraction"][kind]
        m = weights["mae"]["trained"]["near_zero_fraction"][kind]
        rows.append(
            _row(
                f"near_zero_fraction_{kind}",
                f"fraction of trained weights near zero ({kind} threshold)",
                d,
                m,
                "dae > mae",
            )
        )
    for kind in ("absolute", "relative"):
        d = weights["dae"]["trained"]["near_zero_fraction"][kind] - weights["dae"]["init"]["near_zero_fraction"][kind]
        m = weights["mae"]["trained"]["near_zero_fraction"][kind] - weights["mae"]["init"]["near_zero_fraction"][kind]
        rows.append(
            _row(
                f"near_zero_fraction_{kind}_change_from_init",
                f"trained minus init fraction near zero ({kind} threshold)",
                d,
                m,
                "dae > mae",
            )
        )
    return _summary("H2", rows)


H3_MEASURES = (
    ("psnr", ("mae", "mask"), ("dae", "noise"), "PSNR, each model under its own corruption (the study's comparison)"),
    ("ssim", ("mae", "mask"), ("dae", "noise"), "SSIM, each model under its own corruption (the study's comparison)"),
    ("psnr", ("mae", "mask"), ("dae", "mask"), "PSNR, both on the same masked input"),
    ("ssim", ("mae", "mask"), ("dae", "mask"), "SSIM, both on the same masked input"),
    ("psnr_masked", ("mae", "mask"), ("dae", "mask"), "PSNR on the masked patches only, same masked input"),
    ("psnr", ("mae", "noise"), ("dae", "noise"), "PSNR, both on the same noisy input"),
    ("ssim", ("mae", "noise"), ("dae", "noise"), "SSIM, both on the same noisy input"),
)


_INPUT = {"mask": "masked", "noise": "noisy"}


def h3_verdict(reconstruction: dict) -> dict:
    """
    Args:
        reconstruction: the cross table `{model: {corruption: {metric: {"mean": ..}}}}` of
            `mae_hf.analysis.reconstruction.cross_table`.

    Returns:
        verdict rows comparing mean metrics, under each corruption and across them.
    """
    rows = []
    for metric, (mm, mc), (dm, dc), description in H3_MEASURES:
        m = reconstruction[mm][mc][metric]["mean"]
        d = reconstruction[dm][dc][metric]["mean"]
        rows.append(
            _row(
                metric, description, float(d), float(m), "mae > dae", corruption=f"MAE: {_INPUT[mc]}, DAE: {_INPUT[dc]}"
            )
        )
    return _summary("H3", rows)


def compute_verdicts(latents: dict, weights: dict, reconstruction: dict) -> dict:
    """All three verdicts: `{"H1": .., "H2": .., "H3": ..}` (see `h1_verdict`, `h2_verdict`, `h3_verdict`)."""
    return {"H1": h1_verdict(latents), "H2": h2_verdict(weights), "H3": h3_verdict(reconstruction)}
