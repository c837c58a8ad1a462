"""Figures from arrays: every function takes arrays (never a model), accepts an optional `ax` where it draws one
panel, and returns `(Figure, Axes)` (an array of Axes for multi-panel figures). Nothing here computes an analysis
or saves a file; the report writer and the app do that.

Figures are `matplotlib.figure.Figure` objects, not pyplot's: no global state, no backend to choose, safe in a
server's threads. `figure_to_rgb` renders one into an array (the app shows those).
"""

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "figure_to_rgb",
    "plot_image_rows",
    "plot_metric_histograms",
    "plot_tsne",
    "plot_cls_attention",
    "plot_overlay",
    "plot_overlay_row",
    "plot_weight_histograms",
    "plot_radius_bars",
    "plot_tsne_maps",
    "plot_radius_panels",
    "plot_overlays",
    "plot_grid_tsne",
    "plot_learning_curves",
    "plot_budget_curves",
    "plot_budget_effects",
]


def _img(x) -> np.ndarray:
    """(C, H, W) / (H, W) tensor or array → (H, W) or (H, W, 3) for imshow."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim == 3:
        a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    return np.clip(a, 0, 1)


def _fig_ax(ax, figsize):
    if ax is None:
        fig = Figure(figsize=figsize)
        return fig, fig.subplots()
    return ax.figure, ax


def figure_to_rgb(fig: Figure, dpi: float | None = None) -> np.ndarray:
    """A Figure rendered to an (H, W, 3) uint8 array."""
    if dpi is not None:
        fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _mosaic(images: list[np.ndarray], gap: int = 1, fill: float = 1.0) -> np.ndarray:
    """Images (H, W) or (H, W, 3) side by side with `gap` columns of `fill` between them (layout only)."""
    h = images[0].shape[0]
    sep = np.full((h, gap) + images[0].shape[2:], fill, dtype=np.float64)
    parts = []
    for i, im in enumerate(images):
        parts += [im] if i == 0 else [sep, im]
    return np.concatenate(parts, axis=1)


def plot_image_rows(rows: dict, n_show: int = 8, titles: list[str] | None = None, scale: float = 1.0):
    """
    A grid of images: one row per entry of `rows`, one column per image (each row drawn as one strip, which keeps
    large grids fast).

    Args:
        rows: `{row label: (N, C, H, W) images in [0, 1]}`, e.g. original / corrupted / reconstruction / pasted.
        n_show: columns (the first `n_show` images).
        titles: optional per-column titles (e.g. PSNR values), written above the first row.

    Returns:
        (Figure, (rows,) array of Axes).
    """
    if not rows:
        raise ValueError("`rows` is empty.")
    n_show = min(n_show, min(len(v) for v in rows.values()))
    fig = Figure(figsize=(scale * n_show + 1.4, scale * len(rows)))
    axes = fig.subplots(len(rows), 1, squeeze=False)
    for ax, (label, images) in zip(axes[:, 0], rows.items()):
        strip = _mosaic([_img(images[c]) for c in range(n_show)])
        ax.imshow(strip, cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, fontsize=7)
    if titles is not None:
        w = _img(next(iter(rows.values()))[0]).shape[1]
        ax = axes[0, 0]
        ax.set_xticks([(w + 1) * c + w / 2 for c in range(n_show)])
        ax.set_xticklabels(titles[:n_show], fontsize=7)
        ax.xaxis.tick_top()
        ax.tick_params(length=0)
    fig.tight_layout(h_pad=0.2)
    return fig, axes[:, 0]


def plot_metric_histograms(values: dict, metric: str, bins: int = 30, ax=None):
    """
    Overlaid histograms of a per-image metric, one per series; infinite and nan values are left out.

    Args:
        values: `{series label: (N,) values}`. metric: axis label (e.g. `"PSNR (dB)"`).

    Returns:
        (Figure, Axes).
    """
    fig, ax = _fig_ax(ax, (5, 3.2))
    finite = {k: np.asarray(v, dtype=np.float64)[np.isfinite(v)] for k, v in values.items()}
    nonempty = [v for v in finite.values() if v.size]
    if nonempty:
        lo, hi = min(v.min() for v in nonempty), max(v.max() for v in nonempty)
        edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
        for label, v in finite.items():
            ax.hist(v, bins=edges, alpha=0.55, label=f"{label} ({v.mean():.2f} ± {v.std():.2f})" if v.size else label)
    ax.set_xlabel(metric)
    ax.set_ylabel("images")
    ax.legend(fontsize=7)
    return fig, ax


def plot_tsne(
    coordinates: np.ndarray,
    labels: np.ndarray,
    title: str = "",
    ax=None,
    highlight: np.ndarray | None = None,
    legend: bool = True,
):
    """
    A 2-D t-SNE scatter coloured by class.

    Args:
        coordinates: (N, 2). labels: (N,) class ids. highlight: optional (M, 2) points drawn as black stars
            (e.g. a new digit placed into the map). legend: a class legend inside the axes (`plot_tsne_maps` draws
            one below its panels instead).

    Returns:
        (Figure, Axes).
    """
    fig, ax = _fig_ax(ax, (4.2, 4.2))
    xy, y = np.asarray(coordinates), np.asarray(labels)
    classes = np.unique(y)
    cmap = colormaps["tab10"]
    for i, c in enumerate(classes):
        pts = xy[y == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=4, color=cmap(i % 10), label=str(c), alpha=0.8)
    if highlight is not None:
        h = np.atleast_2d(highlight)
        ax.scatter(h[:, 0], h[:, 1], s=220, marker="*", color="black", edgecolor="white", zorder=5)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    if legend:
        ax.legend(fontsize=6, markerscale=2, loc="best", ncol=2)
    return fig, ax


def plot_cls_attention(maps: np.ndarray, image=None, rollout: np.ndarray | None = None, scale: float = 1.3):
    """
    CLS attention for one image: one row per layer with a panel per head (each head scaled to its own range), the
    image and the rollout alongside.

    Args:
        maps: (layers, heads, G, G), `nan` at masked patches (drawn light grey).
        image: optional (C, H, W) in [0, 1].
        rollout: optional (G, G) rollout map.

    Returns:
        (Figure, array of Axes): a column of layer strips, then the image and the rollout.
    """
    layers, heads = maps.shape[:2]
    fig = Figure(figsize=(scale * (heads + 2.2), scale * layers + 0.4))
    grid = fig.add_gridspec(layers, 2, width_ratios=[heads, 2])
    cmap = colormaps["viridis"].with_extremes(bad="lightgrey")
    axes = []
    for l in range(layers):
        m = maps[l]
        lo, hi = np.nanmin(m, axis=(1, 2), keepdims=True), np.nanmax(m, axis=(1, 2), keepdims=True)
        norm = (m - lo) / np.where(hi > lo, hi - lo, 1)  # each head on its own scale
        ax = fig.add_subplot(grid[l, 0])
        ax.imshow(np.ma.masked_invalid(_mosaic(list(norm), fill=np.nan)), cmap=cmap, vmin=0, vmax=1)
        ax.set_ylabel(f"layer {l}", fontsize=8)
        ax.set_xticks([(m.shape[-1] + 1) * h + m.shape[-1] / 2 for h in range(heads)] if l == 0 else [])
        if l == 0:
            ax.set_xticklabels([f"head {h}" for h in range(heads)], fontsize=7)
            ax.xaxis.tick_top()
        ax.set_yticks([])
        axes.append(ax)
    side = grid[:, 1].subgridspec(2, 1)
    for i, (panel, title) in enumerate(((image, "image"), (rollout, "rollout"))):
        ax = fig.add_subplot(side[i])
        if panel is not None:
            ax.imshow(
                _img(panel) if title == "image" else np.ma.masked_invalid(panel),
                cmap="gray" if title == "image" else cmap,
            )
            ax.set_title(title, fontsize=8)
        ax.axis("off")
        axes.append(ax)
    return fig, np.array(axes, dtype=object)


def plot_overlay(
    image, heat: np.ndarray, title: str = "", mask: np.ndarray | None = None, ax=None, alpha: float = 0.55
):
    """
    A heat map over a grayscale image; masked pixels (mask = 1) are veiled in grey.

    Args:
        image: (C, H, W) or (H, W) in [0, 1]. heat: (H, W), `nan` allowed (not drawn).
        mask: optional (H, W) with 1 = masked.

    Returns:
        (Figure, Axes).
    """
    fig, ax = _fig_ax(ax, (2.4, 2.4))
    img = _img(image)
    ax.imshow(img if img.ndim == 3 else img, cmap="gray", vmin=0, vmax=1)
    ax.imshow(np.ma.masked_invalid(heat), cmap="inferno", alpha=alpha)
    if mask is not None and np.any(mask):
        shade = np.zeros(np.shape(mask) + (4,))
        shade[..., :3] = 0.6
        shade[..., 3] = 0.65 * np.asarray(mask, dtype=float)  # masked pixels under a grey veil
        ax.imshow(shade)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    return fig, ax


def plot_overlay_row(
    images, heats: dict, masks: dict | None = None, n_show: int = 6, scale: float = 1.3, alpha: float = 0.55
):
    """
    Rows of overlays: one row per heat-map kind, one column per image (each row drawn as one strip).

    Args:
        images: (N, C, H, W) in [0, 1]. heats: `{row label: (N, H, W)}`, each image's map on its own scale.
        masks: optional `{row label: (N, H, W)}`, 1 = masked (veiled grey).

    Returns:
        (Figure, (rows,) array of Axes).
    """
    n_show = min(n_show, len(images))
    fig = Figure(figsize=(scale * n_show + 1.8, scale * len(heats)))
    axes = fig.subplots(len(heats), 1, squeeze=False)
    base = _mosaic([_img(images[c]) for c in range(n_show)])
    for ax, (label, heat) in zip(axes[:, 0], heats.items()):
        h = np.asarray(heat[:n_show], dtype=np.float64)
        peak = np.nanmax(np.abs(h).reshape(n_show, -1), axis=1)
        h = h / np.where(peak > 0, peak, 1)[:, None, None]
        ax.imshow(base, cmap="gray", vmin=0, vmax=1)
        ax.imshow(np.ma.masked_invalid(_mosaic(list(h), fill=np.nan)), cmap="inferno", alpha=alpha, vmin=0, vmax=1)
        if masks and label in masks:
            m = _mosaic([np.asarray(masks[label][c], dtype=float) for c in range(n_show)], fill=0.0)
            shade = np.zeros(m.shape + (4,))
            shade[..., :3] = 0.6
            shade[..., 3] = 0.65 * m
            ax.imshow(shade)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, fontsize=7)
    fig.tight_layout(h_pad=0.2)
    return fig, axes[:, 0]


def plot_weight_histograms(trained: dict, init: dict | None = None, ncols: int = 4, title: str = ""):
    """
    Per-layer weight histograms, trained (filled) over init (outline).

    Args:
        trained / init: `{layer: {"counts": (bins,), "edges": (bins + 1,)}}` as `weight_histograms` returns them
            (use the same `value_range` for both to share bins).

    Returns:
        (Figure, array of Axes).
    """
    layers = list(trained)
    nrows = max(1, -(-len(layers) // ncols))
    fig = Figure(figsize=(3.4 * ncols, 2.6 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, layer in zip(axes.flat, layers):
        h = trained[layer]
        ax.stairs(h["counts"], h["edges"], fill=True, alpha=0.6, label="trained")
        if init is not None and layer in init:
            ax.stairs(init[layer]["counts"], init[layer]["edges"], color="black", label="init")
        ax.set_title(layer, fontsize=10)
        ax.tick_params(labelsize=9)
    for ax in axes.flat[len(layers) :]:
        ax.axis("off")
    if layers:
        axes.flat[0].legend(fontsize=9)
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig, axes


def plot_radius_bars(radii: dict, classes, ylabel: str = "radius", ax=None):
    """
    Per-class radii of several feature sets as grouped bars.

    Args:
        radii: `{series label: (K,) radius per class}`. classes: (K,) class names.

    Returns:
        (Figure, Axes).
    """
    fig, ax = _fig_ax(ax, (6, 3))
    k, n = len(classes), len(radii)
    width = 0.8 / max(n, 1)
    for i, (label, r) in enumerate(radii.items()):
        ax.bar(np.arange(k) + (i - (n - 1) / 2) * width, np.asarray(r), width=width, label=label)
    ax.set_xticks(np.arange(k))
    ax.set_xticklabels([str(c) for c in classes])
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    return fig, ax


def plot_grid_tsne(coordinates: dict, labels: np.ndarray, titles: dict):
    """Four t-SNE maps side by side: `coordinates` `{cell: (N, 2)}`, `titles` `{cell: title}`."""
    fig = Figure(figsize=(3.4 * len(coordinates), 3.4))
    axes = fig.subplots(1, len(coordinates), squeeze=False)
    for ax, (cell, xy) in zip(axes[0], coordinates.items()):
        plot_tsne(xy, labels, title=titles.get(cell, cell), ax=ax)
    fig.tight_layout()
    return fig, axes[0]


def plot_tsne_maps(panels: dict, labels: np.ndarray, size: float = 3.4, highlights: dict | None = None):
    """
    t-SNE maps side by side, each titled inside its own panel, with one class legend below them (readable, and
    over no point).

    Args:
        panels: `{title: (N, 2) coordinates}`. labels: (N,) classes. highlights: optional `{title: (M, 2)}` points
            drawn as stars.

    Returns:
        (Figure, (panels,) array of Axes).
    """
    fig = Figure(figsize=(size * len(panels), size + 0.8))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, xy) in zip(axes, panels.items()):
        plot_tsne(xy, labels, title=title, ax=ax, highlight=(highlights or {}).get(title), legend=False)
        ax.title.set_fontsize(10)
    handles, names = axes[0].get_legend_handles_labels()
    ncol = min(len(names), 5 * len(panels))  # 5 a panel: two rows under a map of its own
    rows = -(-len(names) // max(ncol, 1))
    fig.legend(handles, names, loc="lower center", ncol=ncol, fontsize=10, markerscale=3, frameon=False)
    fig.tight_layout(rect=(0, 0.06 * rows, 1, 1))
    return fig, axes


def plot_radius_panels(panels: dict, classes, size: tuple[float, float] = (6.0, 3.2)):
    """
    Grouped per-class radius bars, one panel per measure: `panels` is `{ylabel: {series label: (K,) radii}}`.

    Returns:
        (Figure, (panels,) array of Axes).
    """
    fig = Figure(figsize=(size[0] * len(panels), size[1]))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (ylabel, radii) in zip(axes, panels.items()):
        plot_radius_bars(radii, classes, ylabel, ax=ax)
    fig.tight_layout()
    return fig, axes


def plot_overlays(image, heats: dict, masks: dict | None = None, size: float = 2.3):
    """One digit under several heat maps side by side (`plot_overlay` each, its title inside the figure)."""
    fig = Figure(figsize=(size * len(heats), size + 0.3))
    axes = fig.subplots(1, len(heats), squeeze=False)[0]
    for ax, (label, heat) in zip(axes, heats.items()):
        mask = (masks or {}).get(label)
        plot_overlay(image, heat, title=label, mask=mask, ax=ax)
    fig.tight_layout()
    return fig, axes


def plot_learning_curves(curves: dict, labels: dict | None = None, size: tuple[float, float] = (4.2, 3.2)):
    """
    Representation and reconstruction against the images seen, one line per model: 5-NN accuracy, linear-probe
    accuracy, and the model's own reconstruction PSNR (on the masked region for a model made for masking, from noise
    for one made for noise).

    Args:
        curves: `{model: [{"images_seen", "knn", "probe", "psnr_masked" or "psnr_noisy"}, ...]}`.
        labels: `{model: its name in the legend}` (default: the key in capitals).

    Returns:
        (Figure, (3,) array of Axes).
    """
    fig = Figure(figsize=(size[0] * 3, size[1]))
    axes = fig.subplots(1, 3, squeeze=False)[0]
    panels = (("knn", "5-NN accuracy"), ("probe", "linear-probe accuracy"), ("psnr", "reconstruction PSNR (dB)"))
    for ax, (key, label) in zip(axes, panels):
        for name, rows in curves.items():
            seen = [r["images_seen"] for r in rows]
            values = [r.get(key, r.get("psnr_masked", r.get("psnr_noisy"))) if key == "psnr" else r[key] for r in rows]
            legend = (labels or {}).get(name, name.upper())
            if key == "psnr":
                legend += " (masked region)" if "psnr_masked" in rows[0] else " (from noise)"
            ax.plot(seen, values, marker="o", markersize=3, label=legend)
        ax.set_xscale("log")
        ax.set_xlabel("training images seen")
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig, axes


BUDGET_MEASURES = (
    "psnr",
    "psnr_masked",
    "psnr_noisy",
    "scale_free_radius",
    "tsne_radius",
    "silhouette",
    "knn_accuracy",
    "probe_accuracy",
    "near_zero_relative_vs_init",
)
CELL_COLORS = {"vit_mask": "#d62728", "vit_noise": "#ff9896", "cnn_mask": "#1f77b4", "cnn_noise": "#aec7e8"}


def _interval_bounds(entries: list[dict]) -> tuple[list[float], list[float]]:
    """Lower and upper bounds of `{"ci_low", "ci_high"}` entries, NaN (no band) where a budget has no interval."""
    lo = [np.nan if e["ci_low"] is None else e["ci_low"] for e in entries]
    return lo, [np.nan if e["ci_high"] is None else e["ci_high"] for e in entries]


def plot_budget_curves(
    budgets: list[dict], labels: dict, baseline: dict | None = None, measures=BUDGET_MEASURES, ncols: int = 3
):
    """
    Every measure of the grid against the training budget: one line per cell (mean over seeds) with its 95%
    interval shaded, raw pixels dashed where they have the measure.

    Args:
        budgets: `[{"images_seen", "summary": {cell: {measure: {"estimate", "ci_low", "ci_high"}}}}]`.
        labels: `{cell: label}`. baseline: `{measure: raw-pixel value}`.

    Returns:
        (Figure, array of Axes).
    """
    measures = [m for m in measures if all(m in budgets[0]["summary"][c] for c in labels)]
    nrows = -(-len(measures) // ncols)
    fig = Figure(figsize=(4.0 * ncols, 2.9 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    seen = [b["images_seen"] for b in budgets]
    for ax, m in zip(axes.flat, measures):
        for cell, label in labels.items():
            s = [b["summary"][cell][m] for b in budgets]
            color = CELL_COLORS.get(cell, "gray")
            ax.plot(seen, [e["estimate"] for e in s], marker="o", markersize=3, color=color, label=label)
            ax.fill_between(seen, *_interval_bounds(s), color=color, alpha=0.2)
        if baseline and m in baseline:
            ax.axhline(baseline[m], color="black", linestyle="--", linewidth=1, label="raw pixels")
        ax.set_xscale("log")
        ax.set_title(m, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(measures) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    for ax in axes[-1]:
        ax.set_xlabel("training images seen", fontsize=8)
    fig.tight_layout()
    return fig, axes


def plot_budget_effects(
    budgets: list[dict],
    measures=(
        "psnr_masked",
        "psnr_noisy",
        "scale_free_radius",
        "knn_accuracy",
        "probe_accuracy",
        "near_zero_relative_vs_init",
    ),
    ncols: int = 3,
):
    """The architecture, corruption and interaction effects of each measure against the budget, with intervals."""
    measures = [m for m in measures if m in budgets[0]["effects"]]
    nrows = -(-len(measures) // ncols)
    fig = Figure(figsize=(4.0 * ncols, 2.9 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    seen = [b["images_seen"] for b in budgets]
    colors = {"architecture": "#9467bd", "corruption": "#2ca02c", "interaction": "#7f7f7f"}
    for ax, m in zip(axes.flat, measures):
        for effect, color in colors.items():
            e = [b["effects"][m][effect] for b in budgets]
            ax.plot(seen, [x["estimate"] for x in e], marker="o", markersize=3, color=color, label=effect)
            ax.fill_between(seen, *_interval_bounds(e), color=color, alpha=0.2)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_title(m, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(measures) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("training images seen", fontsize=8)
    fig.tight_layout()
    return fig, axes
