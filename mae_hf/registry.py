"""Models as data: every kind of model the project compares is one `ModelKind` in `MODEL_KINDS`, as transformers'
Auto classes map a `model_type` to classes and lightly's benchmarks keep a table of methods.

A kind says what its model is called, how it is loaded and rebuilt untrained, which corruption it was made for, how
it reconstructs a corrupted image, which feature sets it gives and which of them can place a new image, and what it
can do besides (attention maps, masking its own input). The evaluation engine, the report, the scorecard, the study's
grid, the cards, the command line and the app take a `dict[str, model]` and ask each model's kind; none of them names
the two models of the study. Adding a third model is one `register_model_kind(ModelKind(...))`, from any module (a
test registers one from the test file alone).

The built-in kinds, `"dae"` (`DAEModel`) and `"mae"` (transformers' `ViTMAEForPreTraining`), are registered here; their
functions import torch and the models on first use, so `import mae_hf.registry` stays light (the app builds its page
from the kinds' names and words before the models load).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "ModelKind",
    "MODEL_KINDS",
    "register_model_kind",
    "kind_of",
    "kind_for_model_type",
    "model_label",
    "feature_labels",
    "feature_label",
    "placeable_features",
]


@dataclass(frozen=True)
class ModelKind:
    """
    One kind of model.

    Attributes:
        name: its key in every `dict[str, model]` and in results files ("mae", "dae").
        label: its short name on the page ("MAE"). description: in words ("masked autoencoder (ViT)").
        model_type: the `model_type` of its `config.json`.
        matches: `(model) -> bool`, whether a model (unwrapped) is of this kind.
        load: `(folder or Hub id) -> model`, in eval mode (attention maps available where it has them).
        build_like: `(model, seed) -> model`, a freshly initialised model of the same architecture (its weights at
            initialisation, for the weight comparison).
        reconstruct: `(model, corrupted (B, C, H, W)) -> (B, C, H, W)` in [0, 1]: what it makes of a corrupted
            image (masked patches set to 0, or noisy), for any corruption.
        latent: `(model, pixel_values) -> tensor`, its latent, differentiable (saliency).
        features: `(model, pixel_values, keys=None, seed=0, study_mask_ratio=0.75) -> {feature set: (N, D)
            float32}`, its feature sets (only `keys` when given).
        feature_labels: `{feature set: words}` for the sets `features` gives, in the order tables show them.
        placeable: the feature sets a new image can be placed into (deterministic ones).
        scorecard_features: `{scorecard key: feature set}`, the sets its scorecard's classifiers read.
        default_corruption: the corruption it is made for, `"mask"` or `"noise"` (a config's `corruption` wins).
        masked_reconstruct: for a model that drops masked patches itself: `(model, pixel_values, mask_ratio, noise)
            -> (corrupted, reconstruction, shown, pixel_mask)`; None for the rest, which are given the masked image.
        has_attention: it has attention maps (`mae_hf.mae.mae_attentions`).
        objective: its training objective per image, `(model, pixel_values, noise, mask_ratio) -> (losses,
            output)` (`mae_hf.evaluation.objective`); None for a kind the project does not train (no loss column).
        describe: `(config) -> str`, its architecture in a few words for the page (default: its description).
    """

    name: str
    label: str
    description: str
    model_type: str
    matches: Callable
    load: Callable
    build_like: Callable
    reconstruct: Callable
    latent: Callable
    features: Callable
    feature_labels: dict = field(default_factory=dict)
    placeable: tuple = ()
    scorecard_features: dict = field(default_factory=dict)
    default_corruption: str = "noise"
    masked_reconstruct: Callable | None = None
    has_attention: bool = False
    objective: Callable | None = None
    describe: Callable | None = None


MODEL_KINDS: dict[str, ModelKind] = {}


def register_model_kind(kind: ModelKind, replace: bool = False) -> ModelKind:
    """Add `kind` to `MODEL_KINDS` (after the ones there); `replace=True` to redefine an existing name."""
    if kind.name in MODEL_KINDS and not replace:
        raise ValueError(f"A model kind {kind.name!r} is registered already; pass replace=True to redefine it.")
    if kind.default_corruption not in ("mask", "noise"):
        raise ValueError(f"`default_corruption` must be 'mask' or 'noise', got {kind.default_corruption!r}.")
    MODEL_KINDS[kind.name] = kind
    return kind


def _unwrap(model):
    inner = getattr(model, "module", model)  # DDP
    return getattr(inner, "_orig_mod", inner)  # torch.compile


def kind_of(model) -> ModelKind:
    """The kind of a model (unwrapping DDP and compiled modules); `TypeError` for a model of no registered kind."""
    inner = _unwrap(model)
    for kind in MODEL_KINDS.values():
        if kind.matches(inner):
            return kind
    raise TypeError(
        f"{type(inner).__name__} is of no registered model kind ({', '.join(MODEL_KINDS)}); register one with "
        "mae_hf.registry.register_model_kind."
    )


def kind_for_model_type(model_type: str | None) -> ModelKind | None:
    """The kind whose models have this `config.json` `model_type`, or None."""
    return next((k for k in MODEL_KINDS.values() if k.model_type == model_type), None)


def model_label(name: str) -> str:
    """A model's short name on the page: its kind's label when `name` is a kind's, else `name` in capitals."""
    return MODEL_KINDS[name].label if name in MODEL_KINDS else name.upper()


RAW_PIXELS = {"raw_pixels": "raw pixels (baseline)"}


def feature_labels(kinds=None) -> dict[str, str]:
    """`{feature set: words}`: raw pixels (the baseline), then each kind's sets (default every registered kind), in
    order."""
    out = dict(RAW_PIXELS)
    for kind in MODEL_KINDS.values() if kinds is None else kinds:
        out.update(kind.feature_labels)
    return out


def feature_label(key: str) -> str:
    """One feature set's words (the key itself for an unknown one)."""
    return feature_labels().get(key, key)


def placeable_features(kinds=None) -> tuple[str, ...]:
    """The feature sets a new image can be placed into: each kind's deterministic sets, then raw pixels."""
    return (*(k for kind in (MODEL_KINDS.values() if kinds is None else kinds) for k in kind.placeable), "raw_pixels")


# ----------------------------------------------------------------------------------------------------------------
# The built-in kinds


def _is_mae(model) -> bool:
    from transformers import ViTMAEForPreTraining

    return isinstance(model, ViTMAEForPreTraining)


def _load_mae(source: str):
    from transformers import ViTMAEForPreTraining

    return ViTMAEForPreTraining.from_pretrained(source, attn_implementation="eager").eval()


def _build_mae_like(model, seed: int):
    from .mae import MAE_PRESETS, build_mae

    arch = {k: getattr(model.config, k) for k in MAE_PRESETS["mnist"]}
    return build_mae("mnist", seed=seed, **arch).eval()


def _mae_reconstruct(model, corrupted):
    from .corruption import spatial_order_noise
    from .mae import forward_mae, num_patches

    order = spatial_order_noise(len(corrupted), num_patches(model.config), device=corrupted.device)
    return model.unpatchify(forward_mae(model, corrupted, order, 0.0).logits).clamp(0, 1)


def _mae_latent(model, pixel_values, mask_ratio: float = 0.0, noise=None):
    from .corruption import spatial_order_noise
    from .mae import forward_encoder, num_patches

    if noise is None:
        noise = spatial_order_noise(len(pixel_values), num_patches(model.config), device=pixel_values.device)
    return forward_encoder(model, pixel_values, noise, mask_ratio).latent


def _mae_features(model, pixel_values, keys=None, seed: int = 0, study_mask_ratio: float = 0.75):
    from .analysis.latents import extract_mae_features, extract_mae_masked_flat

    out = {}
    if keys is None or {"mae_cls", "mae_mean"} & set(keys):
        out |= extract_mae_features(model, pixel_values)
    if keys is None or "mae_masked_flat" in keys:
        out["mae_masked_flat"] = extract_mae_masked_flat(model, pixel_values, study_mask_ratio, seed)[0]
    return {k: v for k, v in out.items() if keys is None or k in keys}


def _mae_masked_reconstruct(model, pixel_values, mask_ratio: float, noise):
    from .mae import reconstruct_mae

    rec = reconstruct_mae(model, pixel_values, mask_ratio=mask_ratio, noise=noise)
    return rec.masked_input, rec.reconstruction, rec.pasted, rec.pixel_mask


def _mae_objective(model, pixel_values, noise, mask_ratio=None):
    from .evaluation import mae_objective

    return mae_objective(model, pixel_values, noise, mask_ratio)


def _describe_mae(config) -> str:
    return (
        f"ViT, {config.patch_size}×{config.patch_size} patches, width {config.hidden_size}, "
        f"{config.num_hidden_layers} encoder / {config.decoder_num_hidden_layers} decoder layers"
    )


def _is_dae(model) -> bool:
    from .modeling_dae import DAEModel

    return isinstance(model, DAEModel)


def _load_dae(source: str):
    from .modeling_dae import DAEModel

    return DAEModel.from_pretrained(source).eval()


def _build_dae_like(model, seed: int):
    import copy

    import torch

    from .modeling_dae import DAEModel

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return DAEModel(copy.deepcopy(model.config)).eval()


def _dae_reconstruct(model, corrupted):
    return model(corrupted, corrupted_pixel_values=corrupted).reconstruction


def _dae_latent(model, pixel_values):
    return model.encode(pixel_values)


def _dae_features(model, pixel_values, keys=None, seed: int = 0, study_mask_ratio: float = 0.75):
    from .analysis.latents import extract_dae_latents

    return {"dae": extract_dae_latents(model, pixel_values)} if keys is None or "dae" in keys else {}


def _describe_dae(config) -> str:
    channels = " → ".join(map(str, [config.num_channels, *config.hidden_channels]))
    return f"conv {channels}, {config.kernel_size}×{config.kernel_size} kernels, 2×2 max-pool"


def _dae_objective(model, pixel_values, noise, mask_ratio=None):
    from .evaluation import dae_objective

    return dae_objective(model, pixel_values, noise, mask_ratio)


register_model_kind(
    ModelKind(
        name="dae",
        label="DAE",
        description="denoising autoencoder (CNN)",
        model_type="conv_dae",
        matches=_is_dae,
        load=_load_dae,
        build_like=_build_dae_like,
        reconstruct=_dae_reconstruct,
        latent=_dae_latent,
        features=_dae_features,
        feature_labels={"dae": "DAE bottleneck"},
        placeable=("dae",),
        scorecard_features={"classifiers": "dae"},
        default_corruption="noise",
        objective=_dae_objective,
        describe=_describe_dae,
    )
)
register_model_kind(
    ModelKind(
        name="mae",
        label="MAE",
        description="masked autoencoder (ViT)",
        model_type="vit_mae",
        matches=_is_mae,
        load=_load_mae,
        build_like=_build_mae_like,
        reconstruct=_mae_reconstruct,
        latent=_mae_latent,
        features=_mae_features,
        feature_labels={
            "mae_cls": "MAE CLS token",
            "mae_mean": "MAE mean patch token",
            "mae_masked_flat": "MAE 75% masked, flattened (the study's way)",
        },
        placeable=("mae_cls", "mae_mean"),
        scorecard_features={"classifiers": "mae_mean", "classifiers_cls": "mae_cls"},
        default_corruption="mask",
        masked_reconstruct=_mae_masked_reconstruct,
        has_attention=True,
        objective=_mae_objective,
        describe=_describe_mae,
    )
)
