"""Configuration of the convolutional denoising autoencoder (DAE)."""

from transformers import PretrainedConfig


class DAEConfig(PretrainedConfig):
    r"""
    Configuration for [`DAEModel`], the study's convolutional denoising autoencoder.

    The defaults reproduce that network: conv 1→32→16→8 channels, 3×3 kernels with padding 1, ReLU and a 2×2
    max-pool after each conv; a decoder of stride-2 transposed convs back to the exact input size and a sigmoid
    output. Training corrupts inputs with `clamp(x + noise_factor * randn, 0, 1)`.

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
        self.image_size = int(image_size)
        self.num_channels = int(num_channels)
        self.hidden_channels = [int(c) for c in hidden_channels]
        self.kernel_size = int(kernel_size)
        self.noise_factor = float(noise_factor)
        self.loss = loss
        super().__init__(**kwargs)
