"""The convolutional denoising autoencoder (DAE) as a `PreTrainedModel`.

Self-contained (only relative imports) so that `save_pretrained` can export it for `trust_remote_code`.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_dae import DAEConfig


@dataclass
class DAEOutput(ModelOutput):
    """
    Output of [`DAEModel`].

    Args:
        loss (`torch.FloatTensor` of shape `()`): Reconstruction loss against the clean input (mean over pixels,
            or over `loss_mask` where given): `reconstruction_loss`.
        reconstruction (`torch.FloatTensor` of shape `(B, C, H, W)`): Decoded image in [0, 1].
        latent (`torch.FloatTensor` of shape `(B, C_latent, H_latent, W_latent)`): Bottleneck, e.g. (B, 8, 3, 3)
            for 28×28 inputs.
        corrupted (`torch.FloatTensor` of shape `(B, C, H, W)`): The input the encoder saw (equal to
            `pixel_values` when no corruption was applied).
        pixel_mask (`torch.FloatTensor` of shape `(B, 1, H, W)`, *optional*): With `corruption="mask"`, the masked
            pixels (1 = hidden), where the loss is taken.
    """

    loss: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    latent: torch.FloatTensor | None = None
    corrupted: torch.FloatTensor | None = None
    pixel_mask: torch.FloatTensor | None = None


def gaussian_corrupt(
    pixel_values: torch.Tensor, noise_factor: float, noise: torch.Tensor | None = None, generator=None
) -> torch.Tensor:
    """`clamp(x + noise_factor * noise, 0, 1)` with `noise ~ N(0, 1)` drawn from `generator` unless given."""
    if noise is None:
        noise = torch.randn(
            pixel_values.shape, generator=generator, device=pixel_values.device, dtype=pixel_values.dtype
        )
    elif noise.shape != pixel_values.shape:
        raise ValueError(
            f"`noise` must have the shape of `pixel_values` {tuple(pixel_values.shape)}, got {tuple(noise.shape)}."
        )
    return (pixel_values + noise_factor * noise.to(pixel_values)).clamp(0.0, 1.0)


def _check_ratio(mask_ratio: float) -> None:
    if not 0.0 <= float(mask_ratio) < 1.0:
        raise ValueError(f"`mask_ratio` must be in [0, 1), got {mask_ratio}.")


def patch_mask_from_noise(noise: torch.Tensor, mask_ratio: float) -> torch.Tensor:
    """
    ViTMAE's mask for a given noise.

    Args:
        noise: (B, L) noise; lower values are kept.
        mask_ratio: fraction of patches to remove, in [0, 1).

    Returns:
        mask: (B, L) float, 0 is keep, 1 is remove; exactly `L - int(L * (1 - mask_ratio))` ones per row.
    """
    _check_ratio(mask_ratio)
    if noise.ndim != 2:
        raise ValueError(f"`noise` must have shape (B, L), got {tuple(noise.shape)}.")
    batch_size, length = noise.shape
    len_keep = int(length * (1 - mask_ratio))
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    mask = torch.ones(batch_size, length, device=noise.device)
    mask[:, :len_keep] = 0
    return torch.gather(mask, 1, ids_restore)  # (B, L) in spatial order


def mask_to_image(mask: torch.Tensor, patch_size: int, image_size: int | tuple[int, int]) -> torch.Tensor:
    """
    Patch mask (B, L) → pixel mask (B, 1, H, W), patches in row-major order as ViTMAE's `patchify`.
    """
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    gh, gw = h // patch_size, w // patch_size
    if mask.ndim != 2 or mask.shape[1] != gh * gw:
        raise ValueError(
            f"`mask` must have shape (B, {gh * gw}) for {h}x{w} images and patch size {patch_size}, got {tuple(mask.shape)}."
        )
    grid = mask.reshape(-1, 1, gh, gw)  # (B, 1, gh, gw)
    return grid.repeat_interleave(patch_size, dim=2).repeat_interleave(patch_size, dim=3)  # (B, 1, H, W)


def mask_patches(
    pixel_values: torch.Tensor,
    patch_size: int,
    mask_ratio: float,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    fill_value: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    Random patch masking of images.

    Args:
        pixel_values: (B, C, H, W), H and W divisible by `patch_size`.
        patch_size: side of a square patch.
        mask_ratio: fraction of patches removed, in [0, 1).
        noise: optional (B, L) noise as ViTMAE takes it; drawn from `generator` when omitted.
        fill_value: value written into removed patches.

    Returns:
        (masked_pixel_values (B, C, H, W), mask (B, L) with 1 = removed, pixel_mask (B, 1, H, W)).
    """
    _check_ratio(mask_ratio)
    if pixel_values.ndim != 4:
        raise ValueError(f"`pixel_values` must have shape (B, C, H, W), got {tuple(pixel_values.shape)}.")
    b, _, h, w = pixel_values.shape
    if patch_size < 1 or h % patch_size or w % patch_size:
        raise ValueError(f"`patch_size`={patch_size} must divide the image size {h}x{w}.")
    length = (h // patch_size) * (w // patch_size)
    if noise is None:
        noise = torch.rand(b, length, generator=generator, device=pixel_values.device)
    elif tuple(noise.shape) != (b, length):
        raise ValueError(f"`noise` must have shape ({b}, {length}), got {tuple(noise.shape)}.")
    mask = patch_mask_from_noise(noise, mask_ratio)
    pixel_mask = mask_to_image(mask, patch_size, (h, w)).to(pixel_values)
    masked = pixel_values * (1 - pixel_mask) + fill_value * pixel_mask
    return masked, mask, pixel_mask


LOSS_REDUCTIONS = ("mean", "none")


def reconstruction_loss(
    reconstruction: torch.Tensor,
    pixel_values: torch.Tensor,
    loss: str,
    loss_mask: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """
    The DAE's loss, defined once: `loss` per pixel against the clean image, averaged over the pixels that count.

    Args:
        reconstruction: (B, C, H, W) in [0, 1]. pixel_values: (B, C, H, W) clean images in [0, 1], the target.
        loss: `"bce"` (binary cross-entropy; NaN everywhere when `reconstruction` is not finite, i.e. diverged
            weights, where `binary_cross_entropy` would raise) or `"mse"` (squared error), as `DAEConfig.loss`.
        loss_mask: (B, 1 or C, H, W), 1 = counts; None: every pixel counts.
        reduction: `"mean"`: one value (), the mean over every counted pixel of the batch, 0 if none counts (the
            model's `loss`); `"none"`: one value per image (B,), the mean over its counted pixels, over all of its
            pixels if none counts (the training objective and evaluation, per image).
    """
    if loss not in ("bce", "mse"):
        raise ValueError(f"`loss` must be 'bce' or 'mse', got {loss!r}.")
    if reduction not in LOSS_REDUCTIONS:
        raise ValueError(f"`reduction` must be one of {list(LOSS_REDUCTIONS)}, got {reduction!r}.")
    if loss == "bce" and not torch.isfinite(reconstruction).all():
        per_pixel = torch.full_like(reconstruction, float("nan"))
    elif loss == "bce":
        per_pixel = F.binary_cross_entropy(reconstruction, pixel_values, reduction="none")
    else:
        per_pixel = (reconstruction - pixel_values) ** 2
    if loss_mask is None:
        return per_pixel.mean() if reduction == "mean" else per_pixel.flatten(1).mean(dim=1)
    weight = loss_mask.to(per_pixel).expand_as(per_pixel)  # (B, C, H, W)
    if reduction == "mean":
        return (per_pixel * weight).sum() / weight.sum().clamp_min(1.0)
    weight = weight.flatten(1)  # (B, C*H*W)
    weight = torch.where(weight.sum(dim=1, keepdim=True) > 0, weight, torch.ones_like(weight))
    return (per_pixel.flatten(1) * weight).sum(dim=1) / weight.sum(dim=1)


def encoder_sizes(image_size: int, num_levels: int) -> list[int]:
    """Spatial size after each 2×2 max-pool (floor), starting with the input size: 28 → [28, 14, 7, 3]."""
    sizes = [image_size]
    for _ in range(num_levels):
        sizes.append(sizes[-1] // 2)
    return sizes


def _upsample_padding(size_in: int, size_out: int) -> dict:
    """Padding and output padding of a 3×3 stride-2 transposed conv mapping `size_in` to `size_out`."""
    padding = 1 if size_out % 2 == 0 else 0
    output_padding = size_out - (2 * size_in + 1 - 2 * padding)
    assert output_padding in (0, 1), (size_in, size_out)
    return {"padding": padding, "output_padding": output_padding}


class DAEPreTrainedModel(PreTrainedModel):
    config_class = DAEConfig
    config: DAEConfig
    base_model_prefix = "dae"
    main_input_name = "pixel_values"
    input_modalities = ("image",)

    def _init_weights(self, module):
        # PyTorch's default (Kaiming-uniform) init for convs, as in the study's Keras/PyTorch networks.
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            module.reset_parameters()


class DAEModel(DAEPreTrainedModel):
    """
    Conv encoder (conv → ReLU → 2×2 max-pool per level) and a transposed-conv decoder back to the exact input size.

    In training (or with `corrupt=True` / `noise=`), the input is corrupted as `config.corruption` says: Gaussian
    noise (the default, the study's DAE) or random patch masking with the loss on the masked pixels.
    """

    def __init__(self, config: DAEConfig):
        super().__init__(config)
        k, pad = config.kernel_size, config.kernel_size // 2
        channels = [config.num_channels, *config.hidden_channels]  # e.g. [1, 32, 16, 8]

        self.encoder = nn.ModuleList(
            nn.Conv2d(c_in, c_out, k, padding=pad) for c_in, c_out in zip(channels[:-1], channels[1:])
        )
        # Decoder mirrors the encoder: 8→8, 8→16, 16→32 with 3×3 stride-2 transposed convs, then conv 32→C.
        # Each one doubles the size exactly, or doubles plus one where a floor-pool dropped a row (3→7→14→28).
        dec = [channels[-1], *reversed(channels[1:])]  # e.g. [8, 8, 16, 32]
        self.sizes = encoder_sizes(config.image_size, len(config.hidden_channels))
        targets = list(reversed(self.sizes[:-1]))  # e.g. [7, 14, 28]
        inputs = list(reversed(self.sizes[1:]))  # e.g. [3, 7, 14]
        self.decoder = nn.ModuleList(
            nn.ConvTranspose2d(c_in, c_out, 3, stride=2, **_upsample_padding(n, t))
            for c_in, c_out, n, t in zip(dec[:-1], dec[1:], inputs, targets)
        )
        self.head = nn.Conv2d(dec[-1], config.num_channels, k, padding=pad)
        self.post_init()

    def encode(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] → latent (B, C_latent, H_latent, W_latent)."""
        self._check_input(pixel_values)
        h = pixel_values
        for conv in self.encoder:
            h = F.max_pool2d(F.relu(conv(h)), 2)
        return h

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent (B, C_latent, H_latent, W_latent) → reconstruction (B, C, H, W) in [0, 1]."""
        expected = (self.config.hidden_channels[-1], self.sizes[-1], self.sizes[-1])
        if latent.ndim != 4 or tuple(latent.shape[1:]) != expected:
            raise ValueError(
                f"`latent` must have shape (B, {', '.join(map(str, expected))}), got {tuple(latent.shape)}."
            )
        h = latent
        for deconv in self.decoder:
            h = F.relu(deconv(h))  # (B, C_i, 2H or 2H+1, ...): 3→7→14→28, 4→8→16→32
        return torch.sigmoid(self.head(h))

    def _check_input(self, pixel_values: torch.Tensor) -> None:
        if not isinstance(pixel_values, torch.Tensor):
            raise TypeError(
                f"`pixel_values` must be a torch.Tensor of shape (B, C, H, W), got {type(pixel_values).__name__}."
            )
        c, s = self.config.num_channels, self.config.image_size
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != (c, s, s):
            raise ValueError(
                f"`pixel_values` must have shape (B, {c}, {s}, {s}) for this model, got {tuple(pixel_values.shape)}; "
                "resize the images or build a DAEConfig with matching `image_size`/`num_channels`."
            )

    def forward(
        self,
        pixel_values: torch.Tensor,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        corrupt: bool | None = None,
        corrupted_pixel_values: torch.Tensor | None = None,
        loss_mask: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> DAEOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(B, C, H, W)`): Clean images in [0, 1]; the loss target.
            noise (`torch.FloatTensor`, *optional*): The corruption's randomness, for repeatable corruption; giving
                it implies `corrupt=True`. With `config.corruption="noise"`: standard-normal noise of shape
                `(B, C, H, W)`. With `"mask"`: ViTMAE-style mask noise of shape `(B, L)` (L patches; the lowest
                `int(L * (1 - mask_ratio))` values are kept), so one tensor gives a ViTMAE and this model one mask.
            generator (`torch.Generator`, *optional*): Generator the noise is drawn from.
            corrupt (`bool`, *optional*): Corrupt the input before encoding. Defaults to `self.training`.
            corrupted_pixel_values (`torch.FloatTensor` of shape `(B, C, H, W)`, *optional*): An input the caller
                already corrupted; used as is instead of the model's own corruption.
            loss_mask (`torch.Tensor` of shape `(B, 1 or C, H, W)`, *optional*): Where the loss is averaged
                (1 = counts). Defaults to the masked pixels under the model's own masking, else every pixel.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        self._check_input(pixel_values)
        pixel_mask = None
        if corrupted_pixel_values is not None:
            if corrupted_pixel_values.shape != pixel_values.shape:
                raise ValueError("`corrupted_pixel_values` must have the same shape as `pixel_values`.")
            corrupted = corrupted_pixel_values
        else:
            if corrupt is None:
                corrupt = self.training or noise is not None
            if not corrupt:
                corrupted = pixel_values
            elif self.config.corruption == "mask":
                corrupted, mask, pixel_mask = mask_patches(
                    pixel_values, self.config.patch_size, self.config.mask_ratio, noise=noise, generator=generator
                )
                if loss_mask is None and mask.sum() > 0:
                    loss_mask = pixel_mask
            else:
                corrupted = gaussian_corrupt(pixel_values, self.config.noise_factor, noise, generator)

        latent = self.encode(corrupted)
        reconstruction = self.decode(latent)

        loss = reconstruction_loss(reconstruction, pixel_values, self.config.loss, loss_mask)

        if not return_dict:
            return tuple(v for v in (loss, reconstruction, latent, corrupted, pixel_mask) if v is not None)
        return DAEOutput(
            loss=loss, reconstruction=reconstruction, latent=latent, corrupted=corrupted, pixel_mask=pixel_mask
        )


if __name__ == "mae_hf.modeling_dae":  # the package's copy, not the one save_pretrained exports for trust_remote_code
    from transformers import AutoConfig, AutoModel

    AutoConfig.register(DAEConfig.model_type, DAEConfig, exist_ok=True)
    AutoModel.register(DAEConfig, DAEModel, exist_ok=True)
    # save_pretrained exports configuration_dae.py + modeling_dae.py and an `auto_map`, so a saved folder loads with
    # AutoModel.from_pretrained(..., trust_remote_code=True) without this package.
    DAEConfig.register_for_auto_class()
    DAEModel.register_for_auto_class("AutoModel")
