"""The masked autoencoder: stock transformers `ViTMAEForPreTraining`, built and used correctly.

Two traps this module exists for (transformers 5.x):
- A `ViTMAEForPreTraining` built from a config has all-zero, frozen position embeddings in encoder and decoder
  and zero cls/mask tokens. `build_mae` sets the fixed 2-D sin-cos tables and the tokens as the original MAE does.
- ViTMAE shuffles tokens even at mask ratio 0 unless given `noise`; `extract_mae_latents` passes noise whose
  argsort is the identity, so tokens come back in spatial order.

And one design choice: ViTMAE reads its mask ratio from its config at every forward, so running a shared model at
another ratio would mean writing to the config. `forward_encoder` / `forward_mae` take the mask ratio and the mask
noise as arguments instead (as the original MAE's `forward_encoder(x, mask_ratio)` does) and only read the model,
so one model serves concurrent callers at different ratios. Only the training loop, which owns its model, sets the
ratio in the config (`mask_ratio_set`).
"""

import contextlib
from dataclasses import dataclass

import torch
from torch import nn
from transformers import ViTMAEConfig, ViTMAEForPreTraining
from transformers.models.vit_mae.modeling_vit_mae import build_2d_sinusoidal_position_embedding

from .corruption import mask_to_image, random_patch_noise, spatial_order_noise

__all__ = [
    "MAE_PRESETS",
    "mae_config",
    "build_mae",
    "initialize_mae_weights",
    "MAEForward",
    "forward_encoder",
    "forward_mae",
    "mae_loss_target",
    "masked_patch_loss",
    "MAEReconstruction",
    "reconstruct_mae",
    "extract_mae_latents",
    "mae_attentions",
    "mask_ratio_set",
    "evaluating",
    "num_patches",
    "check_pixels",
]

# Sized for CPU training. layer_norm_eps=1e-6 is the original MAE's value; transformers' default 1e-12 gives NaN
# gradients on MNIST's blank patches.
MAE_PRESETS: dict[str, dict] = {
    "mnist": dict(
        image_size=28,
        patch_size=4,
        num_channels=1,
        hidden_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=512,
        decoder_hidden_size=64,
        decoder_num_hidden_layers=2,
        decoder_num_attention_heads=4,
        decoder_intermediate_size=256,
        mask_ratio=0.75,
        norm_pix_loss=False,
        layer_norm_eps=1e-6,
    ),
    "cifar10": dict(
        image_size=32,
        patch_size=4,
        num_channels=3,
        hidden_size=192,
        num_hidden_layers=6,
        num_attention_heads=6,
        intermediate_size=768,
        decoder_hidden_size=128,
        decoder_num_hidden_layers=2,
        decoder_num_attention_heads=4,
        decoder_intermediate_size=512,
        mask_ratio=0.75,
        norm_pix_loss=False,
        layer_norm_eps=1e-6,
    ),
}


def mae_config(preset: str = "mnist", **overrides) -> ViTMAEConfig:
    """A `ViTMAEConfig` from a preset (`"mnist"`: 28×28×1, `"cifar10"`: 32×32×3) with keyword overrides."""
    if preset not in MAE_PRESETS:
        raise ValueError(f"Unknown MAE preset {preset!r}; choose one of {sorted(MAE_PRESETS)}.")
    kwargs = {**MAE_PRESETS[preset], **overrides}
    if kwargs["image_size"] % kwargs["patch_size"]:
        raise ValueError(f"`patch_size`={kwargs['patch_size']} must divide `image_size`={kwargs['image_size']}.")
    if not 0.0 <= kwargs["mask_ratio"] < 1.0:
        raise ValueError(f"`mask_ratio` must be in [0, 1), got {kwargs['mask_ratio']}.")
    for dim, heads in (("hidden_size", "num_attention_heads"), ("decoder_hidden_size", "decoder_num_attention_heads")):
        if kwargs[dim] % 4 or kwargs[dim] % kwargs[heads]:
            raise ValueError(f"`{dim}`={kwargs[dim]} must be divisible by 4 (sin-cos table) and by `{heads}`.")
    return ViTMAEConfig(**kwargs)


@torch.no_grad()
def initialize_mae_weights(model: ViTMAEForPreTraining) -> ViTMAEForPreTraining:
    """
    Initialise a config-built ViTMAE as the original MAE does: fixed 2-D sin-cos position tables in encoder and
    decoder (transformers' `build_2d_sinusoidal_position_embedding` in the original MAE's layout: first half the
    column, second half the row, a zero row for CLS), cls/mask tokens ~ N(0, 0.02), patch projection xavier-uniform
    as a linear layer, linear layers xavier-uniform with zero bias, LayerNorms (1, 0).
    """
    config = model.config
    grid = config.image_size // config.patch_size
    emb = model.vit.embeddings
    for table in (emb.position_embeddings, model.decoder.decoder_pos_embed):  # (1, 1+L, D) each
        sincos = build_2d_sinusoidal_position_embedding(grid, grid, embed_dim=table.shape[-1], cls_token=True)
        # transformers' builder lays a row out as [sin_h|cos_h|sin_w|cos_w]; the original MAE (and so the pretrained
        # facebook/vit-mae weights and ours) has the halves the other way round, [sin_w|cos_w|sin_h|cos_h]: swap
        # them exactly as ViTMAEEmbeddings.initialize_weights and ViTMAEDecoder.initialize_weights do.
        half = table.shape[-1] // 2
        table.copy_(torch.cat([sincos[:, half:], sincos[:, :half]], dim=-1).unsqueeze(0))
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    w = emb.patch_embeddings.projection.weight
    nn.init.xavier_uniform_(w.view(w.shape[0], -1))
    nn.init.zeros_(emb.patch_embeddings.projection.bias)
    nn.init.normal_(emb.cls_token, std=config.initializer_range)
    nn.init.normal_(model.decoder.mask_token, std=config.initializer_range)
    return model


def build_mae(preset: str = "mnist", seed: int | None = None, **overrides) -> ViTMAEForPreTraining:
    """
    Build a fresh, correctly initialised `ViTMAEForPreTraining` (the only way this project makes one).

    Args:
        preset: `"mnist"` or `"cifar10"`.
        seed: if given, the weights depend only on it.
        **overrides: any `ViTMAEConfig` field, e.g. `patch_size=7, mask_ratio=0.5`.
    """
    config = mae_config(preset, **overrides)
    with torch.random.fork_rng(enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        model = ViTMAEForPreTraining(config)
        initialize_mae_weights(model)
    return model


def num_patches(config: ViTMAEConfig) -> int:
    return (config.image_size // config.patch_size) ** 2


@contextlib.contextmanager
def mask_ratio_set(model: ViTMAEForPreTraining, mask_ratio: float):
    """Temporarily train `model` at another mask ratio (ViTMAE reads it from its config at each forward). For the
    training loop, which owns its model; everything else passes the ratio to `forward_encoder` / `forward_mae`."""
    if not 0.0 <= float(mask_ratio) < 1.0:
        raise ValueError(f"`mask_ratio` must be in [0, 1), got {mask_ratio}.")
    old = model.config.mask_ratio
    model.config.mask_ratio = float(mask_ratio)
    try:
        yield model
    finally:
        model.config.mask_ratio = old


@contextlib.contextmanager
def evaluating(model: torch.nn.Module):
    """Run `model` in eval mode: a model in training mode is switched to eval and back afterwards; a model already
    in eval mode is not written to at all (so a model shared by concurrent requests is only read)."""
    if not model.training:
        yield model
        return
    model.eval()
    try:
        yield model
    finally:
        model.train()


@contextlib.contextmanager
def _attn_implementation(model: ViTMAEForPreTraining, implementation: str):
    old = model.config._attn_implementation
    if old != implementation:
        model.set_attn_implementation(implementation)
    try:
        yield model
    finally:
        if old != implementation:
            model.set_attn_implementation(old)


def check_pixels(model: ViTMAEForPreTraining, pixel_values: torch.Tensor) -> None:
    """Raise a `ValueError` naming the expected shape unless `pixel_values` is (B, C, H, W) for `model`."""
    c, s = model.config.num_channels, model.config.image_size
    if (
        not isinstance(pixel_values, torch.Tensor)
        or pixel_values.ndim != 4
        or tuple(pixel_values.shape[1:]) != (c, s, s)
    ):
        shape = tuple(pixel_values.shape) if isinstance(pixel_values, torch.Tensor) else type(pixel_values).__name__
        raise ValueError(f"`pixel_values` must be a tensor of shape (B, {c}, {s}, {s}) for this MAE, got {shape}.")


@dataclass
class MAEForward:
    """
    One ViTMAE forward at an explicit mask ratio (`forward_encoder`, `forward_mae`).

    Attributes:
        latent: (B, 1 + K, D) encoder output: the CLS token, then the K kept tokens in the order `noise` sorts them
            (spatial order for `spatial_order_noise`).
        mask: (B, L), 0 is keep, 1 is remove, in spatial order. ids_restore: (B, L), ViTMAE's unshuffling indices.
        ids_keep: (B, K), the patch index (row-major) of each kept token.
        logits: (B, L, p*p*C) the decoder's prediction of every patch in spatial order (`forward_mae` only).
        attentions: one (B, heads, 1 + K, 1 + K) tensor per encoder layer when asked for, else None.
    """

    latent: torch.Tensor
    mask: torch.Tensor
    ids_restore: torch.Tensor
    ids_keep: torch.Tensor
    logits: torch.Tensor | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


def _layer_with_attention(layer: nn.Module, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One ViTMAE encoder layer (pre-norm attention and MLP, each with a residual), returning its attention weights
    too (eager attention gives them; `tests/test_mae.py` holds this equal to the layer's own forward)."""
    attended, weights = layer.attention(layer.layernorm_before(hidden))
    hidden = layer.dropout(attended) + hidden
    hidden = layer.dropout(layer.mlp(layer.layernorm_after(hidden))) + hidden
    return hidden, weights


def forward_encoder(
    model: ViTMAEForPreTraining,
    pixel_values: torch.Tensor,
    noise: torch.Tensor,
    mask_ratio: float,
    output_attentions: bool = False,
) -> MAEForward:
    """
    ViTMAE's encoder at `mask_ratio`, reading the model only (its config's `mask_ratio` is not used).

    The same steps as `ViTMAEModel.forward` (patch embedding plus the fixed position table, random masking by
    argsorting `noise`, the CLS token, the layers, the final norm), with the ratio an argument: at the config's
    ratio the output equals `model.vit(pixel_values, noise=noise)` exactly.

    Args:
        model: a `ViTMAEForPreTraining` (eval mode for deterministic outputs).
        pixel_values: (B, C, H, W). noise: (B, L); the `int(L * (1 - mask_ratio))` lowest values are kept.
        mask_ratio: in [0, 1). output_attentions: also return each layer's attention weights (needs eager
            attention: `mae_attentions` switches to it when the model was loaded otherwise).
    """
    check_pixels(model, pixel_values)
    if not 0.0 <= float(mask_ratio) < 1.0:
        raise ValueError(f"`mask_ratio` must be in [0, 1), got {mask_ratio}.")
    emb, length = model.vit.embeddings, num_patches(model.config)
    if noise.shape != (len(pixel_values), length):
        raise ValueError(f"`noise` must have shape ({len(pixel_values)}, {length}), got {tuple(noise.shape)}.")
    tokens = emb.patch_embeddings(pixel_values) + emb.position_embeddings[:, 1:]  # (B, L, D)
    b, _, dim = tokens.shape
    len_keep = int(length * (1 - float(mask_ratio)))
    ids_shuffle = torch.argsort(noise.to(tokens.device), dim=1)  # (B, L)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]  # (B, K)
    kept = torch.gather(tokens, 1, ids_keep.unsqueeze(-1).repeat(1, 1, dim))  # (B, K, D)
    mask = torch.ones(b, length, device=tokens.device)
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, 1, ids_restore)  # (B, L), spatial order
    cls = (emb.cls_token + emb.position_embeddings[:, :1]).expand(b, -1, -1)  # (B, 1, D)
    hidden = torch.cat([cls, kept], dim=1)  # (B, 1+K, D)
    attentions = [] if output_attentions else None
    for layer in model.vit.layers:
        if output_attentions:
            hidden, weights = _layer_with_attention(layer, hidden)
            attentions.append(weights)
        else:
            hidden = layer(hidden)
    return MAEForward(
        latent=model.vit.layernorm(hidden),
        mask=mask,
        ids_restore=ids_restore,
        ids_keep=ids_keep,
        attentions=None if attentions is None else tuple(attentions),
    )


def forward_mae(
    model: ViTMAEForPreTraining, pixel_values: torch.Tensor, noise: torch.Tensor, mask_ratio: float
) -> MAEForward:
    """`forward_encoder`, then ViTMAE's decoder: `logits` (B, L, p*p*C) predict every patch. At the config's ratio
    the logits equal `model(pixel_values, noise=noise).logits` exactly."""
    out = forward_encoder(model, pixel_values, noise, mask_ratio)
    out.logits = model.decoder(out.latent, out.ids_restore).logits
    return out


def _norm_pix_statistics(patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each patch's mean and std as ViTMAE's `norm_pix_loss` normalises its target: (B, L, 1) each,
    std = sqrt(unbiased variance + 1e-6)."""
    return patches.mean(dim=-1, keepdim=True), (patches.var(dim=-1, keepdim=True) + 1.0e-6) ** 0.5


def mae_loss_target(model: ViTMAEForPreTraining, pixel_values: torch.Tensor) -> torch.Tensor:
    """
    What ViTMAE's decoder is trained to predict, as `ViTMAEForPreTraining.forward` builds it: `model.patchify`'s
    patches (B, L, p*p*C), each normalised to zero mean and unit variance under `config.norm_pix_loss`.
    """
    target = model.patchify(pixel_values)  # (B, L, p*p*C)
    if model.config.norm_pix_loss:
        mean, std = _norm_pix_statistics(target)
        target = (target - mean) / std
    return target


def masked_patch_loss(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """
    ViTMAE's loss per image, defined once: each patch's mean squared error over its p*p*C values, averaged over the
    masked patches. An image with no patch masked is averaged over all its patches (ViTMAE's own `loss`, one value
    for the batch, divides by zero there). For a non-empty mask the mean over images equals ViTMAE's `loss`, since
    every image has the same number of masked patches.

    Args:
        prediction, target: (B, L, p*p*C) patches in `model.patchify`'s order (the decoder's `logits` and
            `mae_loss_target`, or two images patchified).
        mask: (B, L), 0 is keep, 1 is remove (the patches the loss is taken on).

    Returns:
        (B,) losses.
    """
    per_patch = ((prediction - target) ** 2).mean(dim=-1)  # (B, L)
    weight = torch.where(mask.sum(dim=1, keepdim=True) > 0, mask, torch.ones_like(mask))
    return (per_patch * weight).sum(dim=1) / weight.sum(dim=1)


@dataclass
class MAEReconstruction:
    """
    Everything a figure or metric needs from one masked forward pass. Images are (B, C, H, W) in [0, 1].

    Attributes:
        reconstruction: decoder output for every patch, clamped to [0, 1].
        pasted: the input's visible patches with the reconstruction in the masked ones.
        masked_input: the input with masked patches set to 0 (what the encoder "sees").
        mask: (B, L), 1 = removed. pixel_mask: (B, 1, H, W), 1 = removed.
        loss: mean squared error of `reconstruction` on the masked patches (on all patches at mask ratio 0), as a
            float: `masked_patch_loss` in pixel space, averaged over the images.
        noise: the (B, L) noise that produced the mask, to apply the same mask elsewhere.
    """

    reconstruction: torch.Tensor
    pasted: torch.Tensor
    masked_input: torch.Tensor
    mask: torch.Tensor
    pixel_mask: torch.Tensor
    loss: float
    noise: torch.Tensor


@torch.no_grad()
def reconstruct_mae(
    model: ViTMAEForPreTraining,
    pixel_values: torch.Tensor,
    mask_ratio: float | None = None,
    seed: int | None = None,
    noise: torch.Tensor | None = None,
) -> MAEReconstruction:
    """
    Reconstruct images under a random patch mask; same seed (or same `noise`) → same mask, same output.

    Args:
        model: a ViTMAE trained on [0, 1] pixels (`norm_pix_loss=False`).
        pixel_values: (B, C, H, W) in [0, 1].
        mask_ratio: fraction of patches masked (defaults to the model's); in [0, 1).
        seed: seeds the mask when `noise` is not given.
        noise: (B, L) ViTMAE noise; overrides `seed`.
    """
    check_pixels(model, pixel_values)
    config = model.config
    mask_ratio = config.mask_ratio if mask_ratio is None else mask_ratio
    b, length = pixel_values.shape[0], num_patches(config)
    if noise is None:
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        noise = random_patch_noise(b, length, generator=generator)
    noise = noise.to(pixel_values.device)
    with evaluating(model):
        out = forward_mae(model, pixel_values, noise, mask_ratio)
    recon_patches = out.logits  # (B, L, p*p*C)
    if config.norm_pix_loss:
        mean, std = _norm_pix_statistics(model.patchify(pixel_values))
        recon_patches = recon_patches * std + mean
    reconstruction = model.unpatchify(recon_patches).clamp(0, 1)  # (B, C, H, W)
    pixel_mask = mask_to_image(out.mask, config.patch_size, config.image_size).to(pixel_values)  # (B, 1, H, W)
    pasted = pixel_values * (1 - pixel_mask) + reconstruction * pixel_mask
    loss = float(masked_patch_loss(model.patchify(reconstruction), model.patchify(pixel_values), out.mask).mean())
    return MAEReconstruction(
        reconstruction=reconstruction,
        pasted=pasted,
        masked_input=pixel_values * (1 - pixel_mask),
        mask=out.mask,
        pixel_mask=pixel_mask,
        loss=loss,
        noise=noise,
    )


@torch.no_grad()
def extract_mae_latents(model: ViTMAEForPreTraining, pixel_values: torch.Tensor) -> torch.Tensor:
    """
    Encoder tokens with masking off, in spatial order.

    Returns:
        (B, 1 + L, D): the CLS token, then one token per patch in row-major order (`[:, 0]` is CLS,
        `[:, 1:].mean(1)` the mean-pooled patch tokens).
    """
    check_pixels(model, pixel_values)
    b, length = pixel_values.shape[0], num_patches(model.config)
    noise = spatial_order_noise(b, length, device=pixel_values.device)
    with evaluating(model):
        out = forward_encoder(model, pixel_values, noise, 0.0)
    assert out.ids_restore.equal(torch.arange(length, device=out.ids_restore.device).expand(b, length))
    return out.latent  # (B, 1+L, D)


@torch.no_grad()
def mae_attentions(
    model: ViTMAEForPreTraining,
    pixel_values: torch.Tensor,
    mask_ratio: float = 0.0,
    noise: torch.Tensor | None = None,
    seed: int | None = None,
) -> tuple[tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]:
    """
    Encoder attention maps at `mask_ratio`, from the same weights. SDPA returns no maps: a model loaded with another
    attention implementation is switched to eager for the call (one caller at a time, then); `mae_hf.loading` loads
    the MAE with eager attention, so a served model is never switched.

    Returns:
        (attentions, ids_keep, mask): `attentions` has one (B, heads, 1+K, 1+K) tensor per layer over the CLS token
        and the K kept patches; `ids_keep` (B, K) gives each kept token's patch index (row-major); `mask` (B, L),
        1 = removed. With mask ratio 0 and no noise, tokens are in spatial order (`ids_keep` = 0..L-1).
    """
    check_pixels(model, pixel_values)
    b, length = pixel_values.shape[0], num_patches(model.config)
    if noise is None:
        if mask_ratio == 0.0 and seed is None:
            noise = spatial_order_noise(b, length, device=pixel_values.device)
        else:
            generator = torch.Generator().manual_seed(seed) if seed is not None else None
            noise = random_patch_noise(b, length, generator=generator).to(pixel_values.device)
    with evaluating(model), _attn_implementation(model, "eager"):
        out = forward_encoder(model, pixel_values, noise, mask_ratio, output_attentions=True)
    return out.attentions, out.ids_keep, out.mask
