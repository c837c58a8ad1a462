"""Weight statistics per layer: histograms and the fraction of near-zero weights, trained vs at initialisation.

"More near-zero weights" depends on the threshold and on each layer's scale at initialisation (a 3×3 conv with 1
input channel starts with weights up to 1/3, a 128-wide linear layer with weights up to 0.15), so it is measured
two ways — |w| < an absolute ε, and |w| < ε_rel × the layer's std — and judged against the same model at init.

A "layer" groups the parameters of one block: the name up to its first numeric index (`vit.encoder.layer.0`,
`encoder.1`), else the owning module (`decoder.decoder_pred`, `head`).
"""

import re
from collections import OrderedDict

import numpy as np
import torch

__all__ = [
    "layer_parameters",
    "weight_histograms",
    "near_zero_fraction",
    "near_zero_table",
    "near_zero_summary",
    "trained_and_init_histograms",
    "DEFAULT_EPS_ABS",
    "DEFAULT_EPS_REL",
]

DEFAULT_EPS_ABS = 1e-2
DEFAULT_EPS_REL = 0.1


def _layer_name(param_name: str) -> str:
    parts = param_name.split(".")
    for i, p in enumerate(parts[:-1]):
        if re.fullmatch(r"\d+", p):
            return ".".join(parts[: i + 1])
    return ".".join(parts[:-1]) or parts[0]


def _is_table(param_name: str) -> bool:
    """Tokens and position tables: not conv/linear weights (ViTMAE's fixed sin-cos tables may load as trainable)."""
    return any(k in param_name for k in ("token", "pos_embed", "position_embeddings"))


def layer_parameters(model: torch.nn.Module, kind: str = "weights") -> "OrderedDict[str, np.ndarray]":
    """
    Parameter values grouped by layer, in module order.

    Args:
        model: any `nn.Module`.
        kind: `"weights"` — trainable conv/linear weight tensors (ndim ≥ 2), the ones "near-zero weights" is about;
            `"all"` — every parameter (biases, norms, tokens and frozen position tables included).

    Returns:
        `{layer: (n,) float64 values}`.
    """
    if kind not in ("weights", "all"):
        raise ValueError(f"`kind` must be 'weights' or 'all', got {kind!r}.")
    groups: OrderedDict[str, list[np.ndarray]] = OrderedDict()
    for name, p in model.named_parameters():
        if kind == "weights" and (p.ndim < 2 or not p.requires_grad or _is_table(name)):
            continue
        groups.setdefault(_layer_name(name), []).append(p.detach().cpu().double().flatten().numpy())
    return OrderedDict((k, np.concatenate(v)) for k, v in groups.items())


def weight_histograms(
    model: torch.nn.Module,
    bins: int = 60,
    kind: str = "weights",
    value_range: tuple[float, float] | dict[str, tuple[float, float]] | None = None,
) -> "OrderedDict[str, dict[str, np.ndarray]]":
    """
    Per-layer histograms of parameter values.

    Args:
        bins: number of bins. kind: see `layer_parameters`.
        value_range: fixed (lo, hi) for every layer, or `{layer: (lo, hi)}` (e.g. to share bins between a trained
            model and its init); defaults to each layer's own min/max so every value is counted.

    Returns:
        `{layer: {"counts": (bins,) int64, "edges": (bins + 1,)}}`; with the default range the counts sum to the
        layer's parameter count.
    """
    out = OrderedDict()
    for layer, values in layer_parameters(model, kind).items():
        rng = value_range.get(layer) if isinstance(value_range, dict) else value_range
        lo, hi = rng if rng is not None else (values.min(), values.max())
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
        out[layer] = {"counts": counts.astype(np.int64), "edges": edges}
    return out


def near_zero_fraction(
    values: np.ndarray, eps_abs: float = DEFAULT_EPS_ABS, eps_rel: float = DEFAULT_EPS_REL
) -> dict[str, float]:
    """
    Fraction of values with |w| < `eps_abs`, and with |w| < `eps_rel` × std(values).

    Returns:
        `{"absolute": float, "relative": float, "std": float, "n": int}`.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("No values to measure.")
    std = float(v.std())
    return {
        "absolute": float((np.abs(v) < eps_abs).mean()),
        "relative": float((np.abs(v) < eps_rel * std).mean()),
        "std": std,
        "n": int(v.size),
    }


def near_zero_table(
    model: torch.nn.Module, eps_abs: float = DEFAULT_EPS_ABS, eps_rel: float = DEFAULT_EPS_REL
) -> dict[str, dict]:
    """
    Near-zero fractions for every layer's weights and for the whole model (all weight tensors pooled; the relative
    one pools each weight's comparison against its own layer's std).

    Returns:
        `{"layers": {layer: near_zero_fraction}, "overall": {"absolute", "relative", "n"}, "eps_abs", "eps_rel"}`.
    """
    layers = {k: near_zero_fraction(v, eps_abs, eps_rel) for k, v in layer_parameters(model, "weights").items()}
    if not layers:
        raise ValueError("The model has no trainable weight tensors (ndim >= 2).")
    n = sum(s["n"] for s in layers.values())
    overall = {
        "absolute": sum(s["absolute"] * s["n"] for s in layers.values()) / n,
        "relative": sum(s["relative"] * s["n"] for s in layers.values()) / n,
        "n": n,
    }
    return {"layers": layers, "overall": overall, "eps_abs": eps_abs, "eps_rel": eps_rel}


def near_zero_summary(model: torch.nn.Module, eps_abs: float = DEFAULT_EPS_ABS, eps_rel: float = DEFAULT_EPS_REL):
    """`near_zero_table` as the report keeps it: `{"near_zero_fraction": {"absolute", "relative"}, "n_weights",
    "layers": {layer: {"near_zero_fraction", "std", "n"}}}`."""
    t = near_zero_table(model, eps_abs, eps_rel)
    return {
        "near_zero_fraction": {"absolute": t["overall"]["absolute"], "relative": t["overall"]["relative"]},
        "n_weights": t["overall"]["n"],
        "layers": {
            k: {
                "near_zero_fraction": {"absolute": v["absolute"], "relative": v["relative"]},
                "std": v["std"],
                "n": v["n"],
            }
            for k, v in t["layers"].items()
        },
    }


def trained_and_init_histograms(trained: torch.nn.Module, init: torch.nn.Module) -> dict:
    """Per-layer weight histograms of a trained model and of the same architecture at initialisation, on shared
    bins (each layer's range over both): `{"trained": ..., "init": ...}`."""
    pt, pi = layer_parameters(trained), layer_parameters(init)
    ranges = {k: (min(pt[k].min(), pi[k].min()), max(pt[k].max(), pi[k].max())) for k in pt}
    return {
        "trained": weight_histograms(trained, value_range=ranges),
        "init": weight_histograms(init, value_range=ranges),
    }
