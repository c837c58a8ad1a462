"""The study's released checkpoints in this project's formats, so its own numbers can be measured, not typed.

The study we revisit (github.com/ivywu2003/autoencoders) released two MNIST checkpoints, both plain PyTorch state
dicts: `mnist_mae_vit/mae_weights_vit_patch2_20epochs.pth`, a facebookresearch MAE (`models_mae.py`'s
`MaskedAutoencoderViT`, as its `mae_vit.py` subclasses it for one channel), and `mnist_mae_vit/dae_weights.pth`,
Udacity's convolutional denoiser (`dae.py`'s `ConvDenoiser`).

- **The MAE → `ViTMAEForPreTraining`**, key for key as transformers' own ViTMAE conversion script maps it (in
  transformers 5's module names): the fused `attn.qkv` is split into query, key and value, the fixed sin-cos
  position tables are the checkpoint's own (a config-built ViTMAE would have zeros there). Widths, depths, patch
  size and channels are read from the tensors' shapes; what the tensors cannot say is the study's code's
  (`STUDY_MAE_SETTINGS`). The study fed the MAE images in [-1, 1] (`Normalize((0.5,), (0.5,))`); this project's
  engine feeds every model [0, 1] and reads its output in [0, 1], so the affine map is folded into the weights
  (`fold_input_range`): the converted model on `x` is exactly the study's on `2x - 1`, its prediction mapped back
  by `(y + 1) / 2`, and its folder's image processor only rescales to [0, 1].
- **The DAE → `DAEModel`.** Same encoder; the decoder's second and third transposed convs are 2×2 in the study and
  3×3 (padding 1, output padding 1) here. A 2×2 stride-2 transposed conv is that 3×3 one with its kernel in the
  bottom-right 2×2 corner and zeros elsewhere (output `o = 2i + j` either way), so the study's network maps exactly;
  the converted model computes the study's function with 3,200 of its 12,785 parameters held at zero (the study's
  network has 9,585).

`convert_mae_state_dict` and `convert_dae_state_dict` are pure (tensors in, model out); `load_checkpoint`,
`write_model` and `convert_study` touch files, and a folder is written whole or not at all. `score_converted`
scores converted models under every protocol of `PROTOCOLS` (`mae-hf convert-study` runs all of it).
"""

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch

from .data import dataset_provenance, image_processor
from .loading import no_progress_bars
from .modeling_dae import DAEConfig, DAEModel

__all__ = [
    "STUDY_REPOSITORY",
    "STUDY_FILES",
    "STUDY_MAE_SETTINGS",
    "STUDY_MAE_INPUT_RANGE",
    "STUDY_DAE_SETTINGS",
    "load_checkpoint",
    "mae_config_from_state_dict",
    "rename_mae_state_dict",
    "fold_input_range",
    "convert_mae_state_dict",
    "dae_config_from_state_dict",
    "rename_dae_state_dict",
    "convert_dae_state_dict",
    "write_model",
    "CONVERTERS",
    "FOLDERS",
    "convert_study",
    "study_protocol",
    "PROTOCOLS",
    "score_converted",
    "describe_data",
]

STUDY_REPOSITORY = "https://github.com/ivywu2003/autoencoders"
STUDY_FILES = {"mae": "mnist_mae_vit/mae_weights_vit_patch2_20epochs.pth", "dae": "mnist_mae_vit/dae_weights.pth"}

# What the MAE's tensors do not say, from the study's code. mnist_mae_vit/train_mae_vit.py and evaluation/loaders.py
# build MaskedAutoencoderViTForMNIST(img_size=28, patch_size=2, in_chans=1, embed_dim=64, depth=4, num_heads=4,
# decoder_embed_dim=32, decoder_depth=2, decoder_num_heads=4); mae_vit.py's defaults give mlp_ratio 4,
# norm_pix_loss False and norm_layer=nn.LayerNorm, i.e. eps 1e-5 (models_mae.py's presets use 1e-6; this one does
# not); the mae submodule's block.py builds Block(qkv_bias=True) with timm's Mlp (exact GELU). Training masked 75%.
STUDY_MAE_SETTINGS = dict(
    num_attention_heads=4,
    decoder_num_attention_heads=4,
    layer_norm_eps=1e-5,
    hidden_act="gelu",
    qkv_bias=True,
    norm_pix_loss=False,
    mask_ratio=0.75,
)
# The MAE's inputs: transforms.Normalize((0.5,), (0.5,)) after ToTensor, so [0, 1] → [-1, 1].
STUDY_MAE_INPUT_RANGE = (-1.0, 1.0)
# The DAE: ToTensor inputs in [0, 1], noise_factor 0.5 clipped to [0, 1], nn.MSELoss (mnist_mae_vit/train_dae.py).
STUDY_DAE_SETTINGS = dict(image_size=28, noise_factor=0.5, loss="mse", corruption="noise")

_FIX_MAE = (
    f"Pass the study's MAE checkpoint ({STUDY_FILES['mae']}, a models_mae.MaskedAutoencoderViT state dict) with --mae."
)
_FIX_DAE = f"Pass the study's DAE checkpoint ({STUDY_FILES['dae']}, a dae.ConvDenoiser state dict) with --dae."


# ----------------------------------------------------------------------------------------------------------------
# Reading a checkpoint


def load_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """
    A `.pth` state dict, read on the CPU with `weights_only=True` (tensors only: no code in the file runs). A dict
    holding it under `"model"` (facebookresearch's own checkpoints) is unwrapped.

    Raises:
        ValueError: the file is missing, unreadable, or holds no state dict.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(
            f"No checkpoint at {str(path)!r}. Download it from {STUDY_REPOSITORY} ({', '.join(STUDY_FILES.values())})."
        )
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises pickle, zip and runtime errors alike
        raise ValueError(
            f"Could not read {str(path)!r} as a PyTorch state dict ({type(err).__name__}: {err}). A file of a few "
            "hundred bytes is a Git LFS pointer, not the weights: download the file itself."
        ) from err
    if isinstance(loaded, dict) and isinstance(loaded.get("model"), dict):
        loaded = loaded["model"]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise ValueError(f"{str(path)!r} holds a {type(loaded).__name__}, not a state dict of tensors.")
    return dict(loaded)


def _check_keys(state_dict: dict, expected: list[str], what: str, fix: str) -> None:
    missing = [k for k in expected if k not in state_dict]
    unexpected = sorted(set(state_dict) - set(expected))
    problems = [
        f"{label} {len(keys)} key(s) ({', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''})"
        for label, keys in (("lacks", missing), ("has unexpected", unexpected))
        if keys
    ]
    if problems:
        raise ValueError(f"This is not {what}: the state dict {' and '.join(problems)}. {fix}")


def _check_shapes(renamed: dict, model: torch.nn.Module, names: dict, fix: str) -> None:
    """Every converted tensor has the shape the target model holds there; `names` maps a target key back to the
    checkpoint's key for the message."""
    target = model.state_dict()
    for key, value in renamed.items():
        if tuple(value.shape) != tuple(target[key].shape):
            raise ValueError(
                f"`{names[key]}` has shape {tuple(value.shape)} but the architecture read from the other tensors "
                f"needs {tuple(target[key].shape)} at `{key}`: the checkpoint mixes architectures. {fix}"
            )


def _block_indices(state_dict: dict, prefix: str) -> list[int]:
    found = {int(m.group(1)) for k in state_dict if (m := re.match(rf"{prefix}\.(\d+)\.", k))}
    return list(range(max(found) + 1)) if found else []


# ----------------------------------------------------------------------------------------------------------------
# The MAE

_MAE_TOP = {  # models_mae.py name → ViTMAEForPreTraining name (transformers 5)
    "cls_token": "vit.embeddings.cls_token",
    "pos_embed": "vit.embeddings.position_embeddings",
    "patch_embed.proj.weight": "vit.embeddings.patch_embeddings.projection.weight",
    "patch_embed.proj.bias": "vit.embeddings.patch_embeddings.projection.bias",
    "norm.weight": "vit.layernorm.weight",
    "norm.bias": "vit.layernorm.bias",
    "mask_token": "decoder.mask_token",
    "decoder_pos_embed": "decoder.decoder_pos_embed",
    "decoder_embed.weight": "decoder.decoder_embed.weight",
    "decoder_embed.bias": "decoder.decoder_embed.bias",
    "decoder_norm.weight": "decoder.decoder_norm.weight",
    "decoder_norm.bias": "decoder.decoder_norm.bias",
    "decoder_pred.weight": "decoder.decoder_pred.weight",
    "decoder_pred.bias": "decoder.decoder_pred.bias",
}
_MAE_BLOCK = {  # inside one transformer block; attn.qkv is split below
    "norm1": "layernorm_before",
    "attn.proj": "attention.o_proj",
    "norm2": "layernorm_after",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}
_MAE_STACKS = {"blocks": "vit.layers", "decoder_blocks": "decoder.decoder_layers"}


def _mae_keys(depth: int, decoder_depth: int) -> list[str]:
    """Every key of a `MaskedAutoencoderViT` state dict with these depths (no patch-embedding norm)."""
    keys = list(_MAE_TOP)
    for stack, n in (("blocks", depth), ("decoder_blocks", decoder_depth)):
        for i in range(n):
            for name in (*_MAE_BLOCK, "attn.qkv"):
                keys += [f"{stack}.{i}.{name}.weight", f"{stack}.{i}.{name}.bias"]
    return keys


def mae_config_from_state_dict(state_dict: dict[str, torch.Tensor], **settings):
    """
    The `ViTMAEConfig` of a facebookresearch MAE state dict: patch size, channels, image size, widths, depths and MLP
    sizes from the tensors' shapes; the rest from `STUDY_MAE_SETTINGS` (override any with `settings`).

    Raises:
        ValueError: naming what is missing or unexpected and how to fix it.
    """
    from transformers import ViTMAEConfig

    depth, decoder_depth = _block_indices(state_dict, "blocks"), _block_indices(state_dict, "decoder_blocks")
    if not depth or not decoder_depth:
        hint = " (it looks like the study's DAE: pass that file with --dae)" if "encoder.0.weight" in state_dict else ""
        raise ValueError(
            "This is not a facebookresearch MAE state dict: it has no `blocks.N.` and `decoder_blocks.N.` "
            f"tensors{hint}. {_FIX_MAE}"
        )
    _check_keys(state_dict, _mae_keys(len(depth), len(decoder_depth)), "a facebookresearch MAE", _FIX_MAE)
    hidden, channels, patch, _ = state_dict["patch_embed.proj.weight"].shape  # (D, C, p, p)
    length = state_dict["pos_embed"].shape[1] - 1  # (1, 1 + L, D)
    grid = int(round(length**0.5))
    if grid * grid != length:
        raise ValueError(f"`pos_embed` has {length} patch positions, not a square grid. {_FIX_MAE}")
    kwargs = dict(
        image_size=grid * patch,
        patch_size=patch,
        num_channels=channels,
        hidden_size=hidden,
        num_hidden_layers=len(depth),
        intermediate_size=state_dict["blocks.0.mlp.fc1.weight"].shape[0],
        decoder_hidden_size=state_dict["decoder_embed.weight"].shape[0],
        decoder_num_hidden_layers=len(decoder_depth),
        decoder_intermediate_size=state_dict["decoder_blocks.0.mlp.fc1.weight"].shape[0],
    )
    kwargs |= {**STUDY_MAE_SETTINGS, **settings}
    for dim, heads in (("hidden_size", "num_attention_heads"), ("decoder_hidden_size", "decoder_num_attention_heads")):
        if kwargs[dim] % kwargs[heads]:
            raise ValueError(f"{heads}={kwargs[heads]} does not divide the checkpoint's {dim} {kwargs[dim]}.")
    return ViTMAEConfig(**kwargs)


def rename_mae_state_dict(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """
    facebookresearch MAE names → `ViTMAEForPreTraining` names, as transformers' ViTMAE conversion script maps them:
    each block's fused `attn.qkv` (3D, D) is split in order into the query, key and value projections (D, D).

    Returns:
        (the renamed state dict, `{new key: old key}` for messages). Tensors are not copied.
    """
    out, source = {}, {}
    for key, value in state_dict.items():
        if key in _MAE_TOP:
            out[_MAE_TOP[key]] = value
            source[_MAE_TOP[key]] = key
            continue
        match = re.match(r"(blocks|decoder_blocks)\.(\d+)\.(.+)\.(?:weight|bias)$", key)
        if match is None or match.group(3) not in (*_MAE_BLOCK, "attn.qkv"):
            raise ValueError(f"`{key}` is not a tensor of a facebookresearch MAE. {_FIX_MAE}")
        stack, index, name = match.groups()
        prefix, param = f"{_MAE_STACKS[stack]}.{index}.attention", key.rsplit(".", 1)[1]
        if name == "attn.qkv":
            for part, chunk in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0)):  # (3D, ...) → 3 × (D, ...)
                out[f"{prefix}.{part}.{param}"] = chunk
                source[f"{prefix}.{part}.{param}"] = key
        else:
            new = f"{_MAE_STACKS[stack]}.{index}.{_MAE_BLOCK[name]}.{param}"
            out[new] = value
            source[new] = key
    return out, source


def fold_input_range(
    renamed: dict[str, torch.Tensor], low: float, high: float, norm_pix_loss: bool = False
) -> dict[str, torch.Tensor]:
    """
    A ViTMAE trained on pixels in [low, high] → the same network on pixels in [0, 1], exactly.

    With `a = high - low`, the trained model saw `a·x + low`. Its patch embedding is linear and unpadded, so
    `W * (a·x + low) + b = (a·W) * x + (b + low·ΣW)`; its decoder predicted `y' = a·y + low`, so `y = (W/a)·h +
    (b - low)/a` (under `norm_pix_loss` the target is normalised per patch, where the affine map cancels: the
    decoder is left as it is).

    Args:
        renamed: a `ViTMAEForPreTraining` state dict (`rename_mae_state_dict`'s).
    Returns:
        a new state dict; only the patch projection and the decoder's prediction layer differ.
    """
    a = float(high) - float(low)
    if a <= 0:
        raise ValueError(f"The input range must have low < high, got [{low}, {high}].")
    out = dict(renamed)
    w = renamed["vit.embeddings.patch_embeddings.projection.weight"]  # (D, C, p, p)
    b = renamed["vit.embeddings.patch_embeddings.projection.bias"]  # (D,)
    out["vit.embeddings.patch_embeddings.projection.weight"] = a * w
    out["vit.embeddings.patch_embeddings.projection.bias"] = b + low * w.sum(dim=(1, 2, 3))
    if not norm_pix_loss:
        out["decoder.decoder_pred.weight"] = renamed["decoder.decoder_pred.weight"] / a  # (p*p*C, D_dec)
        out["decoder.decoder_pred.bias"] = (renamed["decoder.decoder_pred.bias"] - low) / a
    return out


def convert_mae_state_dict(
    state_dict: dict[str, torch.Tensor], input_range: tuple[float, float] = STUDY_MAE_INPUT_RANGE, **settings
):
    """
    A facebookresearch MAE state dict as a `ViTMAEForPreTraining` (eval mode, eager attention) that takes and
    predicts pixels in [0, 1] (`fold_input_range` from `input_range`, the range the checkpoint was trained on).

    Args:
        state_dict: e.g. the study's `mae_weights_vit_patch2_20epochs.pth`.
        input_range: the pixel range the checkpoint was trained on; `(0, 1)` folds nothing.
        **settings: `ViTMAEConfig` fields the tensors do not fix (default `STUDY_MAE_SETTINGS`).

    Raises:
        ValueError: a missing, unexpected or misshapen tensor, named with the fix.
    """
    from transformers import ViTMAEForPreTraining

    config = mae_config_from_state_dict(state_dict, **settings)
    renamed, source = rename_mae_state_dict(state_dict)
    model = ViTMAEForPreTraining(config)
    _check_shapes(renamed, model, source, _FIX_MAE)
    folded = fold_input_range(renamed, *input_range, norm_pix_loss=config.norm_pix_loss)
    model.load_state_dict({k: v.clone() for k, v in folded.items()}, strict=True)
    return model.eval()


# ----------------------------------------------------------------------------------------------------------------
# The DAE

# dae.py's ConvDenoiser: encoder = Sequential(conv, ReLU, pool) × 3 → tensors at 0, 3, 6; decoder = Sequential(
# ConvT 3×3, ReLU, ConvT 2×2, ReLU, ConvT 2×2, ReLU, conv 3×3, Sigmoid) → tensors at 0, 2, 4, 6.
_DAE_ENCODER = ("encoder.0", "encoder.3", "encoder.6")
_DAE_DECODER = ("decoder.0", "decoder.2", "decoder.4")
_DAE_HEAD = "decoder.6"
_DAE_KEYS = [f"{m}.{p}" for m in (*_DAE_ENCODER, *_DAE_DECODER, _DAE_HEAD) for p in ("weight", "bias")]


def dae_config_from_state_dict(state_dict: dict[str, torch.Tensor], **settings) -> DAEConfig:
    """
    The `DAEConfig` of a `ConvDenoiser` state dict: channels and kernel size from the encoder's tensors; image size,
    noise and loss from `STUDY_DAE_SETTINGS` (override any with `settings`).

    Raises:
        ValueError: naming what is missing or unexpected and how to fix it.
    """
    if "blocks.0.attn.qkv.weight" in state_dict:
        raise ValueError(f"This is an MAE state dict (it has `blocks.N.attn.qkv`): pass it with --mae. {_FIX_DAE}")
    _check_keys(state_dict, _DAE_KEYS, "the study's convolutional DAE", _FIX_DAE)
    weights = [state_dict[f"{m}.weight"] for m in _DAE_ENCODER]  # (C_out, C_in, k, k) each
    return DAEConfig(
        num_channels=weights[0].shape[1],
        hidden_channels=[w.shape[0] for w in weights],
        kernel_size=weights[0].shape[-1],
        **{**STUDY_DAE_SETTINGS, **settings},
    )


def _embed_kernel(kernel: torch.Tensor, deconv: torch.nn.ConvTranspose2d, key: str) -> torch.Tensor:
    """A stride-2 transposed-conv kernel (C_in, C_out, k, k) as `deconv`'s: as it is when the sizes agree; a 2×2 one
    (no padding: input i, tap j reach output 2i + j) in the bottom-right corner of a 3×3 one with padding 1 (tap j
    reaches 2i + j - 1, so tap j + 1 reaches 2i + j: the same outputs), zeros in the first row and column."""
    k_in, k_out = kernel.shape[-1], deconv.kernel_size[0]
    if k_in == k_out:
        return kernel
    if (k_in, k_out, deconv.stride[0], deconv.padding[0], deconv.output_padding[0]) != (2, 3, 2, 1, 1):
        raise ValueError(
            f"`{key}` is a {k_in}×{k_in} transposed conv, which maps onto DAEModel's {k_out}×{k_out} one (stride "
            f"{deconv.stride[0]}, padding {deconv.padding[0]}) only as 2×2 → 3×3 with stride 2 and padding 1. {_FIX_DAE}"
        )
    out = kernel.new_zeros(*kernel.shape[:2], 3, 3)  # (C_in, C_out, 3, 3)
    out[:, :, 1:, 1:] = kernel
    return out


def rename_dae_state_dict(state_dict: dict[str, torch.Tensor], model: DAEModel) -> dict[str, torch.Tensor]:
    """
    `ConvDenoiser` names → `DAEModel` names (`encoder.{0,3,6}` → `encoder.{0,1,2}`, `decoder.{0,2,4}` →
    `decoder.{0,1,2}`, `decoder.6` → `head`), each 2×2 transposed-conv kernel embedded in `model`'s 3×3 one.
    """
    pairs = [
        *zip(_DAE_ENCODER, (f"encoder.{i}" for i in range(3))),
        *zip(_DAE_DECODER, (f"decoder.{i}" for i in range(3))),
        (_DAE_HEAD, "head"),
    ]
    out = {}
    for old, new in pairs:
        weight = state_dict[f"{old}.weight"]
        if new.startswith("decoder."):
            weight = _embed_kernel(weight, model.get_submodule(new), f"{old}.weight")
        out[f"{new}.weight"], out[f"{new}.bias"] = weight, state_dict[f"{old}.bias"]
    return out


def convert_dae_state_dict(state_dict: dict[str, torch.Tensor], **settings) -> DAEModel:
    """
    The study's `ConvDenoiser` state dict as a `DAEModel` (eval mode) computing the same function.

    Raises:
        ValueError: a missing, unexpected or misshapen tensor, named with the fix.
    """
    model = DAEModel(dae_config_from_state_dict(state_dict, **settings))
    renamed = rename_dae_state_dict(state_dict, model)
    _check_shapes(renamed, model, {k: k for k in renamed}, _FIX_DAE)
    model.load_state_dict({k: v.clone() for k, v in renamed.items()}, strict=True)
    return model.eval()


# ----------------------------------------------------------------------------------------------------------------
# Writing a converted model


def write_model(model, out: str | os.PathLike, provenance: dict, overwrite: bool = False) -> Path:
    """
    Write `model` as a Hugging Face folder: `save_pretrained` (config.json, model.safetensors; the DAE's code for
    `trust_remote_code`), the image processor (rescale to [0, 1], no normalisation: the converted models take
    [0, 1]) and `conversion.json` (`provenance`). Staged in a temporary folder beside `out` and renamed into place,
    so `out` is either complete or untouched.

    Raises:
        ValueError: `out` exists and `overwrite` is False.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise ValueError(f"{str(out)!r} exists already; pass --overwrite to replace it, or another --out.")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        with no_progress_bars():
            model.save_pretrained(staging)
        image_processor(model.config.image_size, model.config.num_channels).save_pretrained(staging)
        (staging / "conversion.json").write_text(json.dumps(provenance, indent=1) + "\n")
        for path in staging.iterdir():
            path.chmod(0o644)  # safetensors are written 0600 through a temporary file
        staging.chmod(0o755)  # mkdtemp's folder is 0700
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


# ----------------------------------------------------------------------------------------------------------------
# The study's checkpoints, converted and scored

CONVERTERS = {"mae": convert_mae_state_dict, "dae": convert_dae_state_dict}
FOLDERS = {"mae": "study-mae-mnist", "dae": "study-dae-mnist"}
_MAPPINGS = {
    "mae": "facebookresearch models_mae.MaskedAutoencoderViT -> transformers ViTMAEForPreTraining as transformers' "
    "ViTMAE conversion script maps it (fused attn.qkv split into query/key/value); trained on [-1, 1] inputs, folded "
    "into the patch projection and decoder_pred so this model takes and predicts [0, 1] pixels",
    "dae": "dae.ConvDenoiser -> mae_hf DAEModel; the 2x2 stride-2 transposed convs (decoder.2, decoder.4) embedded "
    "in DAEModel's 3x3 ones (padding 1, output padding 1) with zeros in the first row and column: the same function",
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def convert_study(sources: dict, out: str | os.PathLike, overwrite: bool = False) -> dict[str, Path]:
    """
    Convert the study's checkpoints and write each as a folder under `out` (`FOLDERS`).

    Every checkpoint is read and converted before anything is written, and every target checked first, so a bad
    file leaves `out` as it was.

    Args:
        sources: `{"mae": path, "dae": path}` (either may be left out).
    Returns:
        `{name: folder}`.
    """
    unknown = set(sources) - set(CONVERTERS)
    if unknown or not sources:
        raise ValueError(f"Name the checkpoints to convert as {sorted(CONVERTERS)}, got {sorted(sources)}.")
    targets = {name: Path(out) / FOLDERS[name] for name in sources}
    taken = [str(t) for t in targets.values() if t.exists()]
    if taken and not overwrite:
        raise ValueError(f"{', '.join(taken)} exist(s) already; pass --overwrite to replace, or another --out.")
    converted = {}
    for name, path in sources.items():
        path = Path(path).expanduser()
        state_dict = load_checkpoint(path)
        model = CONVERTERS[name](state_dict)
        source = {
            "repository": STUDY_REPOSITORY,
            "file": STUDY_FILES[name],
            "given": path.name,
            "sha256": _sha256(path),
            "tensors": sum(v.numel() for v in state_dict.values()),
        }
        parameters = sum(p.numel() for p in model.parameters())
        converted[name] = model, {"source": source, "mapping": _MAPPINGS[name], "parameters": parameters}
    return {name: write_model(model, targets[name], prov, overwrite) for name, (model, prov) in converted.items()}


def study_protocol(models: dict, data: dict, seed: int = 0) -> dict:
    """The study's protocol as this project measures it (`mae-hf report --scorecard`'s section, `score_models`): 5-NN
    and a linear probe on frozen features fit on `data`'s training digits (and its `full_train` where given), scored
    on its images; each model's reconstruction under its own corruption (masking 0.75, noise 0.5). The report's
    mask-ratio sweep is left out: the study measured none, and it costs eleven more passes over the images."""
    from .pipeline.run import score_models

    return score_models(models, data, data["x"], data["y"], seed, sweep_ratios=())


# The protocols a converted checkpoint is scored under: `{name: (models, data, seed) -> dict}`. The field's protocol
# (weighted cosine kNN on the whole training set, a probe tuned on validation) joins here, as one more entry, once
# mae_hf/analysis/protocol.py is on main; `mae-hf convert-study` and its JSON take every entry.
PROTOCOLS = {"study": study_protocol}


def score_converted(models: dict, data: dict, seed: int = 0, protocols=None) -> dict:
    """
    Score converted models under each protocol of `PROTOCOLS` (or the named `protocols`).

    Args:
        models: `{kind name: model}`. data: `mae_hf.pipeline.load_analysis_data`'s dict.
    Returns:
        `{protocol: its scores}`.
    """
    names = list(PROTOCOLS) if protocols is None else list(protocols)
    unknown = [p for p in names if p not in PROTOCOLS]
    if unknown:
        raise ValueError(f"Unknown protocol(s) {unknown}; choose from {list(PROTOCOLS)}.")
    return {name: PROTOCOLS[name](models, data, seed) for name in names}


def describe_data(dataset: str, n: int, n_train: int, full_train: str | None = None) -> dict[str, str]:
    """Words for `scores.json`: the images scored and those the classifiers were fit on, each dataset named by its
    Hub id where known (never a local path)."""

    def named(source: str) -> tuple[str, dict]:
        p = dataset_provenance(source)
        return p["hub_id"] or p["name"], p

    name, p = named(dataset)
    out = {
        "test": f"the first {n:,} {p.get('test_note') or 'images of the test split'} ({name})",
        "train": f"the first {n_train:,} {p.get('train_note') or 'images of the train split'} ({name})",
    }
    if full_train:
        out["full_train"] = f"the whole train split of {named(full_train)[0]}"
    return out
