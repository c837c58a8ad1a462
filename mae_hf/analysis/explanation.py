"""Why a model answers as it does, for one digit: the CLS attention and rollout of the model with attention maps (the
MAE; masking off, and under the Reconstruct tab's mask for the same seed, drawn by `mae_hf.evaluation.draw_noise`),
and every model's saliency."""

import torch

from ..evaluation import draw_noise
from ..mae import mae_attentions
from ..registry import kind_of
from . import attention as att
from . import saliency as sal

__all__ = ["attending_model", "explain_digit"]


def attending_model(models: dict) -> str | None:
    """The name of the first model whose kind has attention maps, or None."""
    return next((name for name, m in models.items() if kind_of(m).has_attention), None)


def explain_digit(models: dict, pixel_values: torch.Tensor, mask_ratio: float, seed: int) -> dict:
    """
    Attention and saliency of one digit, with masking off and under the mask the Reconstruct tab uses for `seed`.

    Args:
        models: `{name: model}`; one of them has attention maps (`attending_model`). pixel_values: (1, C, H, W) in
            [0, 1]. mask_ratio: in [0, 1); 0 = no mask (then the "masked" maps equal the unmasked ones). The models
            are only read (an MAE loaded with eager attention, as `mae_hf.loading` loads it, is not even switched),
            so threads may share them.

    Returns:
        `{"model": the attending model's name, "cls_maps", "cls_maps_masked": (layers, heads, G, G), "rollout",
        "rollout_masked": (G, G) — nan at masked patches; "saliency": {name: (H, W) in [0, 1]} for every model;
        "saliency_masked": (H, W), the attending model's under the mask; "pixel_mask": (H, W), 1 = masked;
        "masked_input": (C, H, W), masked pixels 0}`.

    Raises:
        ValueError: no model has attention maps, more than one image, or a ratio out of range.
    """
    name = attending_model(models)
    if name is None:
        raise ValueError("None of these models has attention maps (a ViT): there is no attention to show.")
    if pixel_values.ndim != 4 or pixel_values.shape[0] != 1:
        raise ValueError(f"`pixel_values` must be one image (1, C, H, W), got {tuple(pixel_values.shape)}.")
    if not 0.0 <= float(mask_ratio) < 1.0:
        raise ValueError(f"The mask ratio must be in [0, 1), got {mask_ratio}.")
    mae = models[name]
    p, grid = mae.config.patch_size, mae.config.image_size // mae.config.patch_size
    attn, ids_keep, _ = mae_attentions(mae, pixel_values)  # masking off, spatial order
    noise = draw_noise(mae, "mask", [0], seed=int(seed))  # the Reconstruct tab's mask: one function draws both
    attn_m, ids_keep_m, mask = mae_attentions(mae, pixel_values, mask_ratio=float(mask_ratio), noise=noise)
    pixel_mask = att.upsample_grid(mask.reshape(grid, grid).numpy(), p)  # (H, W)
    masked = sal.mae_saliency(mae, pixel_values, mask_ratio=float(mask_ratio), noise=noise)
    return {
        "model": name,
        "cls_maps": att.cls_attention_maps(attn, ids_keep, grid)[:, 0],
        "cls_maps_masked": att.cls_attention_maps(attn_m, ids_keep_m, grid)[:, 0],
        "rollout": att.rollout_cls_map(attn, ids_keep, grid)[0],
        "rollout_masked": att.rollout_cls_map(attn_m, ids_keep_m, grid)[0],
        "saliency": {m: sal.model_saliency(model, pixel_values)[0].numpy() for m, model in models.items()},
        "saliency_masked": masked[0].numpy(),
        "pixel_mask": pixel_mask,
        "masked_input": (pixel_values[0] * (1 - torch.from_numpy(pixel_mask)[None].float())).numpy(),
    }
