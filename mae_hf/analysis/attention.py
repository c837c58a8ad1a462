"""MAE attention mapped onto the image's patch grid: CLS attention per layer and head, and attention rollout.

Inputs are what `mae_hf.mae_attentions` returns: one (B, heads, 1+K, 1+K) tensor per layer over the CLS token
and the K kept patches, and `ids_keep` (B, K), each kept token's patch index in row-major order. Masked patches
have no token; on the grid they are `nan`, so figures can mark them.
"""

import numpy as np
import torch

__all__ = [
    "tokens_to_grid",
    "cls_attention_maps",
    "attention_rollout",
    "rollout_cls_map",
    "upsample_grid",
    "attention_overlays",
    "study_attention_heatmap",
    "pool_to_patches",
    "ink_patches",
    "ink_mass",
]


def _stack(attentions) -> torch.Tensor:
    if isinstance(attentions, torch.Tensor):
        a = attentions if attentions.ndim == 5 else attentions[None]
    else:
        a = torch.stack(tuple(attentions))
    if a.ndim != 5 or a.shape[-1] != a.shape[-2]:
        raise ValueError(
            f"`attentions` must be per-layer (B, heads, T, T) tensors (stacked: (layers, B, heads, T, T)), got {tuple(a.shape)}."
        )
    return a.detach().float().cpu()  # (layers, B, heads, T, T)


def tokens_to_grid(values, ids_keep, grid_size: int) -> np.ndarray:
    """
    Scatter per-token values onto the patch grid.

    Args:
        values: (..., B, K) one value per kept patch token (CLS excluded).
        ids_keep: (B, K) patch index of each token (row-major).
        grid_size: patches per side, G.

    Returns:
        (..., B, G, G) float64, `nan` where a patch was masked.
    """
    v = np.asarray(values, dtype=np.float64)
    ids = np.asarray(ids_keep)
    if ids.ndim != 2 or v.shape[-2:] != ids.shape:
        raise ValueError(f"`values` (..., B, K) must end in the shape of `ids_keep` {ids.shape}, got {v.shape}.")
    if ids.size and (ids.min() < 0 or ids.max() >= grid_size**2):
        raise ValueError(f"`ids_keep` must index patches 0..{grid_size**2 - 1}.")
    out = np.full(v.shape[:-1] + (grid_size * grid_size,), np.nan)
    b = np.arange(ids.shape[0])[:, None]  # (B, 1)
    out[..., b, ids] = v
    return out.reshape(v.shape[:-1] + (grid_size, grid_size))


def cls_attention_maps(attentions, ids_keep, grid_size: int) -> np.ndarray:
    """
    Attention from the CLS token to each patch, per layer and head.

    Returns:
        (layers, B, heads, G, G): row 0 of each attention matrix without the CLS column; `nan` at masked patches.
    """
    a = _stack(attentions)  # (layers, B, heads, T, T)
    cls_row = a[..., 0, 1:]  # (layers, B, heads, K)
    cls_row = cls_row.permute(0, 2, 1, 3)  # (layers, heads, B, K) to scatter over (B, K)
    grid = tokens_to_grid(cls_row.numpy(), ids_keep, grid_size)  # (layers, heads, B, G, G)
    return grid.transpose(0, 2, 1, 3, 4)


def attention_rollout(attentions, add_residual: bool = True) -> np.ndarray:
    """
    Attention rollout (Abnar & Zuidema, 2020): average the heads, add the identity for the residual connection,
    renormalise each row to sum 1, and multiply the layers' matrices from the first to the last.

    Args:
        attentions: per-layer (B, heads, T, T) tensors (or stacked (layers, B, heads, T, T)).
        add_residual: add the identity before renormalising (the paper's 0.5·A + 0.5·I).

    Returns:
        (B, T, T) float64: row i is how much each input token flows into output token i; rows sum to 1.
    """
    a = _stack(attentions).double().mean(2)  # (layers, B, T, T)
    eye = torch.eye(a.shape[-1], dtype=a.dtype)
    rollout = eye.expand_as(a[0]).clone()  # (B, T, T)
    for layer in a:
        if add_residual:
            layer = layer + eye
        layer = layer / layer.sum(-1, keepdim=True)
        rollout = layer @ rollout  # later layers act on what earlier ones mixed
    return rollout.numpy()


def rollout_cls_map(attentions, ids_keep, grid_size: int, add_residual: bool = True) -> np.ndarray:
    """
    The CLS token's rollout over the patch grid, renormalised to sum 1 over the patches.

    Returns:
        (B, G, G), `nan` at masked patches.
    """
    cls_row = attention_rollout(attentions, add_residual)[:, 0, 1:]  # (B, K)
    cls_row = cls_row / cls_row.sum(-1, keepdims=True)
    return tokens_to_grid(cls_row, ids_keep, grid_size)


def upsample_grid(grid: np.ndarray, patch_size: int) -> np.ndarray:
    """(..., G, G) patch values → (..., G·p, G·p) pixel map (each patch's value over its pixels)."""
    g = np.asarray(grid)
    return g.repeat(patch_size, axis=-2).repeat(patch_size, axis=-1)


def attention_overlays(
    rollout: np.ndarray,
    rollout_masked: np.ndarray,
    saliency: dict,
    saliency_masked: np.ndarray,
    pixel_mask: np.ndarray,
    model: str,
    patch_size: int,
    study_heatmap: np.ndarray | None = None,
) -> tuple[dict, dict]:
    """
    The heat maps shown over a picture, by the label each carries, and the masks that veil them: the report's
    overlay rows and the app's overlay panels, the same maps under the same words.

    Args:
        rollout, rollout_masked: (..., G, G) CLS rollout of the attending model `model`, masking off and under the
            mask (`nan` at masked patches).
        saliency: `{model name: (..., H, W)}`, every model's saliency with masking off, in display order.
        saliency_masked: (..., H, W), `model`'s saliency under the mask. pixel_mask: (..., H, W), 1 = masked.
        patch_size: p, pixels per patch side (G·p = H).
        study_heatmap: optional (..., H, W), the study's attention × pixels map, shown after the rollouts.

    Returns:
        `({label: (..., H, W)}, {label: (..., H, W) mask})`: "rollout", "rollout, masked", ["study: attn × pixels",]
        "<model> saliency" for each model and "<model> saliency, masked"; the two masked maps' masks.
    """
    from ..registry import model_label

    masked = f"{model_label(model)} saliency, masked"
    heats = {
        "rollout": upsample_grid(rollout, patch_size),
        "rollout, masked": upsample_grid(rollout_masked, patch_size),
        **({"study: attn × pixels": study_heatmap} if study_heatmap is not None else {}),
        **{f"{model_label(m)} saliency": v for m, v in saliency.items()},
        masked: saliency_masked,
    }
    return heats, {"rollout, masked": pixel_mask, masked: pixel_mask}


def study_attention_heatmap(attentions, ids_keep, grid_size: int, pixel_values, patch_size: int) -> np.ndarray:
    """
    The study's "attention heatmap", reproduced to show what it measured: the last layer's head-averaged CLS
    attention upsampled to pixels and multiplied by the image, so it is bright wherever ink is, whatever the
    attention. Not rollout; kept only for comparison.

    Args:
        pixel_values: (B, C, H, W) in [0, 1].

    Returns:
        (B, H, W), masked patches 0.
    """
    last = cls_attention_maps(attentions, ids_keep, grid_size)[-1].mean(1)  # (B, G, G)
    pixels = np.asarray(pixel_values.detach().cpu() if isinstance(pixel_values, torch.Tensor) else pixel_values)
    return np.nan_to_num(upsample_grid(last, patch_size)) * pixels.mean(1)


def pool_to_patches(pixel_map: np.ndarray, patch_size: int) -> np.ndarray:
    """Per-pixel maps (B, H, W) summed over each patch: (B, H/p, W/p)."""
    b, h, w = pixel_map.shape
    return pixel_map.reshape(b, h // patch_size, patch_size, w // patch_size, patch_size).sum((2, 4))  # (B, G, G)


def ink_patches(pixel_values, patch_size: int, threshold: float) -> np.ndarray:
    """Which patches hold ink: (B, G, G) bool, a patch's mean pixel (channels averaged) above `threshold`."""
    x = pixel_values.mean(1).numpy() if isinstance(pixel_values, torch.Tensor) else np.asarray(pixel_values).mean(1)
    return pool_to_patches(x, patch_size) / (patch_size * patch_size) > threshold


def ink_mass(maps: np.ndarray, ink: np.ndarray) -> float:
    """Mean over images of the share of a (B, G, G) map's mass on ink patches (`nan` patches ignored)."""
    m = np.nan_to_num(maps, nan=0.0)
    total = m.reshape(len(m), -1).sum(1)
    on_ink = (m * ink).reshape(len(m), -1).sum(1)
    ok = total > 0
    return float(np.mean(on_ink[ok] / total[ok])) if ok.any() else float("nan")
