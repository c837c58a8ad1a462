"""mae_hf: a masked autoencoder (ViTMAE) vs a convolutional denoising autoencoder on MNIST-like images.

The names below are imported on first use (PEP 562), so `import mae_hf.digits` or `mae_hf.labels` costs no torch or
transformers import (the app builds its page from them while the models load). Importing the DAE
(`mae_hf.DAEModel`, `mae_hf.modeling_dae`, or anything that uses it) registers it with transformers' Auto classes.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "DAEConfig": "configuration_dae",
    "DAEModel": "modeling_dae",
    "DAEOutput": "modeling_dae",
    "DAEPreTrainedModel": "modeling_dae",
    "MAE_PRESETS": "mae",
    "build_mae": "mae",
    "extract_mae_latents": "mae",
    "mae_attentions": "mae",
    "mae_config": "mae",
    "reconstruct_mae": "mae",
    "add_gaussian_noise": "corruption",
    "mask_patches": "corruption",
    "patch_mask_from_noise": "corruption",
    "random_patch_noise": "corruption",
    "compute_masked_psnr": "metrics",
    "compute_psnr": "metrics",
    "compute_ssim": "metrics",
    "dataset_to_tensors": "data",
    "load_image_dataset": "data",
    "to_pixel_values": "data",
    "with_pixel_values": "data",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        importlib.import_module(".modeling_dae", __name__)  # the Auto-class registration
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
