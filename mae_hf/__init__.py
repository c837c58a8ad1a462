"""mae_hf: a masked autoencoder (ViTMAE) vs a convolutional denoising autoencoder on MNIST-like images."""

from transformers import AutoConfig, AutoModel

from .configuration_dae import DAEConfig
from .corruption import add_gaussian_noise, mask_patches, patch_mask_from_noise, random_patch_noise
from .mae import (
    MAE_PRESETS,
    build_mae,
    extract_mae_latents,
    get_2d_sincos_pos_embed,
    mae_attentions,
    mae_config,
    reconstruct_mae,
)
from .metrics import compute_masked_psnr, compute_psnr, compute_ssim
from .modeling_dae import DAEModel, DAEOutput, DAEPreTrainedModel

__version__ = "0.1.0"

# `mae_hf.data` imports `datasets` (about 0.6 s), which loading and running the models does not need (the app's
# model process, `from_pretrained`): its names are imported on first use.
_DATA_NAMES = ("dataset_to_tensors", "load_image_dataset", "to_pixel_values", "with_pixel_values")


def __getattr__(name: str):
    if name in _DATA_NAMES:
        from . import data

        return getattr(data, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


AutoConfig.register(DAEConfig.model_type, DAEConfig, exist_ok=True)
AutoModel.register(DAEConfig, DAEModel, exist_ok=True)
# save_pretrained exports configuration_dae.py + modeling_dae.py and an `auto_map`, so the folder loads with
# AutoModel.from_pretrained(..., trust_remote_code=True) without this package.
DAEConfig.register_for_auto_class()
DAEModel.register_for_auto_class("AutoModel")

__all__ = [
    "DAEConfig",
    "DAEModel",
    "DAEOutput",
    "DAEPreTrainedModel",
    "MAE_PRESETS",
    "add_gaussian_noise",
    "build_mae",
    "compute_masked_psnr",
    "compute_psnr",
    "compute_ssim",
    "dataset_to_tensors",
    "extract_mae_latents",
    "get_2d_sincos_pos_embed",
    "load_image_dataset",
    "mae_attentions",
    "mae_config",
    "mask_patches",
    "patch_mask_from_noise",
    "random_patch_noise",
    "reconstruct_mae",
    "to_pixel_values",
    "with_pixel_values",
]
