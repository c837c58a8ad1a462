"""Configuration of the convolutional denoising autoencoder (DAE)."""

from transformers import PretrainedConfig


class DAEConfig(PretrainedConfig):
    r"""
    Configuration for [`DAEModel`], the study's convolutional denoising autoencoder.

    The defaults reproduce that network: conv 1→32→16→8 channels, 3×3 kernels with padding 1, ReLU and a 2×2
    max-pool after each conv; a decoder of stride-2 transposed convs back to the exact input size and a sigmoid
    output. Training corrupts inputs with `clamp(x + noise_factor * randn, 0, 1)`.

    The same network can instead be trained on patch-masked inputs (`corruption="mask"`, the MAE's corruption: a
    random `mask_ratio` of the `patch_size`×`patch_size` patches set to 0, the loss on the masked pixels only), the
    "CNN + masking" cell of `mae-hf study`'s architecture × corruption grid.

    Args:
        image_size (`int`, *optional*, defaults to 28): Height and width of the (square) input images.
        num_channels (`int`, *optional*, defaults to 1): Number of input channels (1 for MNIST, 3 for CIFAR-10).
        hidden_channels (`list[int]`, *optional*, defaults to `[32, 16, 8]`): Output channels of each encoder conv.
        kernel_size (`int`, *optional*, defaults to 3): Kernel size of every encoder conv (odd, "same" padding).
        noise_factor (`float`, *optional*, defaults to 0.5): Standard deviation of the Gaussian input noise.
        loss (`str`, *optional*, defaults to `"bce"`): Reconstruction loss, `"bce"` (binary cross-entropy, the
            classic Keras denoising autoencoder's) or `"mse"`. With a sigmoid output, MSE on MNIST's mostly-black
            pixels drives this network to an all-black output within the first epoch (measured: test MSE stuck at
            0.1117, exactly the all-zero prediction's); BCE's gradient does not vanish at the saturated sigmoid.
        corruption (`str`, *optional*, defaults to `"noise"`): `"noise"` (Gaussian, `noise_factor`) or `"mask"`
            (random patch masking, `mask_ratio` and `patch_size`, with ViTMAE's mask semantics).
        mask_ratio (`float`, *optional*, defaults to 0.75): Fraction of patches masked when `corruption="mask"`.
        patch_size (`int`, *optional*, defaults to 4): Side of a masked patch; must divide `image_size`.
    """

    model_type = "conv_dae"

    def __init__(
        self,
        image_size: int = 28,
        num_channels: int = 1,
        hidden_channels: list[int] | tuple[int, ...] = (32, 16, 8),
        kernel_size: int = 3,
        noise_factor: float = 0.5,
        loss: str = "bce",
        corruption: str = "noise",
        mask_ratio: float = 0.75,
        patch_size: int = 4,
        **kwargs,
    ):
        hidden_channels = list(hidden_channels)
        if not hidden_channels or any(int(c) <= 0 for c in hidden_channels):
            raise ValueError(f"`hidden_channels` must be a non-empty list of positive ints, got {hidden_channels}.")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"`kernel_size` must be a positive odd int (for 'same' padding), got {kernel_size}.")
        if image_size < 2 ** len(hidden_channels):
            raise ValueError(
                f"`image_size`={image_size} is too small for {len(hidden_channels)} 2x2 max-pools; "
                f"use at least {2 ** len(hidden_channels)} or fewer `hidden_channels`."
            )
        if num_channels < 1:
            raise ValueError(f"`num_channels` must be >= 1, got {num_channels}.")
        if noise_factor < 0:
            raise ValueError(f"`noise_factor` must be >= 0, got {noise_factor}.")
        if loss not in ("mse", "bce"):
            raise ValueError(f"`loss` must be 'mse' or 'bce', got {loss!r}.")
        if corruption not in ("noise", "mask"):
            raise ValueError(f"`corruption` must be 'noise' or 'mask', got {corruption!r}.")
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"`mask_ratio` must be in [0, 1), got {mask_ratio}.")
        if patch_size < 1 or (corruption == "mask" and image_size % patch_size):
            raise ValueError(f"`patch_size`={patch_size} must be a positive divisor of `image_size`={image_size}.")
        self.image_size = int(image_size)
        self.num_channels = int(num_channels)
        self.hidden_channels = [int(c) for c in hidden_channels]
        self.kernel_size = int(kernel_size)
        self.noise_factor = float(noise_factor)
        self.loss = loss
        self.corruption = corruption
        self.mask_ratio = float(mask_ratio)
        self.patch_size = int(patch_size)
        super().__init__(**kwargs)
