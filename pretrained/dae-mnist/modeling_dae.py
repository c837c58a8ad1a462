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
            or over `loss_mask` where given).
        reconstruction (`torch.FloatTensor` of shape `(B, C, H, W)`): Decoded image in [0, 1].
        latent (`torch.FloatTensor` of shape `(B, C_latent, H_latent, W_latent)`): Bottleneck, e.g. (B, 8, 3, 3)
            for 28×28 inputs.
        corrupted (`torch.FloatTensor` of shape `(B, C, H, W)`): The input the encoder saw (equal to
            `pixel_values` when no corruption was applied).
    """

    loss: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    latent: torch.FloatTensor | None = None
    corrupted: torch.FloatTensor | None = None


def gaussian_corrupt(
    pixel_values: torch.Tensor, noise_factor: float, noise: torch.Tensor | None = None, generator=None
) -> torch.Tensor:
    """`clamp(x + noise_factor * noise, 0, 1)` with `noise ~ N(0, 1)` drawn from `generator` unless given."""
    if noise is None:
        noise = torch.randn(
            pixel_values.shape, generator=generator, device=pixel_values.device, dtype=pixel_values.dtype
        )
    elif noise.shape != pixel_values.shape:
        raise ValueError(f"`noise` must have the shape of `pixel_values` {tuple(pixel_values.shape)}, got {tuple(noise.shape)}.")
    return (pixel_values + noise_factor * noise.to(pixel_values)).clamp(0.0, 1.0)


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
            raise ValueError(f"`latent` must have shape (B, {', '.join(map(str, expected))}), got {tuple(latent.shape)}.")
        h = latent
        for deconv in self.decoder:
            h = F.relu(deconv(h))  # (B, C_i, 2H or 2H+1, ...): 3→7→14→28, 4→8→16→32
        return torch.sigmoid(self.head(h))

    def _check_input(self, pixel_values: torch.Tensor) -> None:
        if not isinstance(pixel_values, torch.Tensor):
            raise TypeError(f"`pixel_values` must be a torch.Tensor of shape (B, C, H, W), got {type(pixel_values).__name__}.")
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
            noise (`torch.FloatTensor` of shape `(B, C, H, W)`, *optional*): Standard-normal noise to use instead of
                drawing it, for repeatable corruption. Giving it implies `corrupt=True`.
            generator (`torch.Generator`, *optional*): Generator the noise is drawn from.
            corrupt (`bool`, *optional*): Add Gaussian noise before encoding. Defaults to `self.training`.
            corrupted_pixel_values (`torch.FloatTensor` of shape `(B, C, H, W)`, *optional*): An input the caller
                already corrupted (e.g. patch-masked); used as is instead of Gaussian noise.
            loss_mask (`torch.Tensor` of shape `(B, 1 or C, H, W)`, *optional*): Where the loss is averaged
                (1 = counts), e.g. only the masked patches.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        self._check_input(pixel_values)
        if corrupted_pixel_values is not None:
            if corrupted_pixel_values.shape != pixel_values.shape:
                raise ValueError("`corrupted_pixel_values` must have the same shape as `pixel_values`.")
            corrupted = corrupted_pixel_values
        else:
            if corrupt is None:
                corrupt = self.training or noise is not None
            corrupted = (
                gaussian_corrupt(pixel_values, self.config.noise_factor, noise, generator) if corrupt else pixel_values
            )

        latent = self.encode(corrupted)
        reconstruction = self.decode(latent)

        if self.config.loss == "bce":
            per_pixel = F.binary_cross_entropy(reconstruction, pixel_values, reduction="none")
        else:
            per_pixel = (reconstruction - pixel_values) ** 2
        if loss_mask is not None:
            weight = loss_mask.to(per_pixel).expand_as(per_pixel)
            loss = (per_pixel * weight).sum() / weight.sum().clamp_min(1.0)
        else:
            loss = per_pixel.mean()

        if not return_dict:
            return (loss, reconstruction, latent, corrupted)
        return DAEOutput(loss=loss, reconstruction=reconstruction, latent=latent, corrupted=corrupted)

