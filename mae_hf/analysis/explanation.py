"""Why a model answers as it does, for one digit: the MAE's CLS attention and rollout (masking off, and under the
Reconstruct tab's mask for the same seed, drawn by `mae_hf.evaluation.draw_noise`), and both models' saliency."""

import numpy as np
import torch

from ..evaluation import draw_noise
from ..mae import mae_attentions
from . import attention as att
from . import saliency as sal

__all__ = ["explain_digit"]


def explain_digit(dae, mae, pixel_values: torch.Tensor, mask_ratio: float, seed: int) -> dict[str, np.ndarray]:
    """
    Attention and saliency of one digit, with masking off and under the mask the Reconstruct tab uses for `seed`.

    Args:
        pixel_values: (1, C, H, W) in [0, 1]. mask_ratio: in [0, 1); 0 = no mask (then the "masked" maps equal the
            unmasked ones). The models are only read (an MAE loaded with eager attention, as `mae_hf.loading`
            loads it, is not even switched), so threads may share them.

    Returns:
        `{"cls_maps", "cls_maps_masked": (layers, heads, G, G), "rollout", "rollout_masked": (G, G) — nan at masked
        patches; "dae_saliency", "mae_saliency", "mae_saliency_masked": (H, W) in [0, 1]; "pixel_mask": (H, W), 1 =
        masked; "masked_input": (C, H, W), masked pixels 0}`.
    """
    if pixel_values.ndim != 4 or pixel_values.shape[0] != 1:
        raise ValueError(f"`pixel_values` must be one image (1, C, H, W), got {tuple(pixel_values.shape)}.")
    if not 0.0 <= float(mask_ratio) < 1.0:
        raise ValueError(f"The mask ratio must be in [0, 1), got {mask_ratio}.")
    p, grid = mae.config.patch_size, mae.config.image_size // mae.config.patch_size
    attn, ids_keep, _ = mae_attentions(mae, pixel_values)  # masking off, spatial order
    noise = draw_noise(mae, "mask", [0], seed=int(seed))  # the Reconstruct tab's mask: one function draws both
    attn_m, ids_keep_m, mask = mae_attentions(mae, pixel_values, mask_ratio=float(mask_ratio), noise=noise)
    pixel_mask = att.upsample_grid(mask.reshape(grid, grid).numpy(), p)  # (H, W)
    return {
        "cls_maps": att.cls_attention_maps(attn, ids_keep, grid)[:, 0],
        "cls_maps_masked": att.cls_attention_maps(attn_m, ids_keep_m, grid)[:, 0],
        "rollout": att.rollout_cls_map(attn, ids_keep, grid)[0],
        "rollout_masked": att.rollout_cls_map(attn_m, ids_keep_m, grid)[0],
        "dae_saliency": sal.dae_saliency(dae, pixel_values)[0].numpy(),
        "mae_saliency": sal.mae_saliency(mae, pixel_values)[0].numpy(),
        "mae_saliency_masked": sal.mae_saliency(mae, pixel_values, mask_ratio=float(mask_ratio), noise=noise)[
            0
        ].numpy(),
        "pixel_mask": pixel_mask,
        "masked_input": (pixel_values[0] * (1 - torch.from_numpy(pixel_mask)[None].float())).numpy(),
    }
