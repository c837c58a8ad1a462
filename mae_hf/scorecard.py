"""The numbers people quote for a trained autoencoder, computed one way for every model: how well a k-NN and a linear
probe read the class from its frozen features (the study's 5-NN and fixed-C probe, and the field's protocol of
`mae_hf.analysis.readout` beside its random-init twin and raw pixels), and how well it fills in or cleans up test
digits, at every mask ratio against the two baselines that need no model at all (black, and the training set's mean
image).

Pure: models and tensors in, dicts of floats out; corruption and scoring are `mae_hf.evaluation`'s, the pooled PSNR
`mae_hf.metrics`', the readouts `mae_hf.analysis.readout`'s.
"""

import numpy as np
import torch

from .analysis.clustering import knn_accuracy, linear_probe_accuracy
from .analysis.readout import KNN_SETTINGS, LOW_LABEL_FRACTIONS, LOW_LABEL_SEED, PROBE_CS, readout_scores
from .evaluation import Corruption, evaluate_images, own_corruption
from .metrics import compute_pooled_psnr
from .registry import kind_of
from .validation import VALIDATION_SEED, validation_indices

__all__ = ["features", "classifier_scores", "readout", "field_protocol", "mask_ratio_sweep", "scorecard"]


def features(model, pixel_values: torch.Tensor, feature_set: str | None = None) -> np.ndarray:
    """A model's frozen features for the scorecard: `feature_set` (default its kind's first scorecard set, e.g. the
    ViT's mean-pooled patch tokens, masking off, or the CNN's flattened bottleneck)."""
    kind = kind_of(model)
    key = feature_set or next(iter(kind.scorecard_features.values()))
    return kind.features(model, pixel_values, keys=(key,))[key]


def classifier_scores(model, train: tuple, test: tuple, feature_set: str | None = None, k: int = 5) -> dict[str, float]:
    """5-NN and linear-probe accuracy on `test`, both fit on `train` (each `(pixel_values, labels)`); `model=None`:
    on the raw pixels, the baseline every representation should beat."""
    if model is None:
        f_train, f_test = train[0].flatten(1).numpy(), test[0].flatten(1).numpy()
    else:
        f_train, f_test = features(model, train[0], feature_set), features(model, test[0], feature_set)
    y_train, y_test = np.asarray(train[1]), np.asarray(test[1])
    return {
        "knn": knn_accuracy(f_train, y_train, f_test, y_test, k=k),
        "probe": linear_probe_accuracy(f_train, y_train, f_test, y_test, max_iter=1000),
    }


def readout(model, train: tuple, test: tuple, validation=None, feature_set: str | None = None) -> dict:
    """
    The field's readouts (`mae_hf.analysis.readout.readout_scores`: weighted cosine kNNs with `train` as memory
    bank, the probe with C chosen on `validation`, the low-label probes) of one model's frozen features; `model=None`:
    of the raw pixels.

    Args:
        train, test: `(pixel_values, labels)`; `train` in dataset order. validation: positions of the validation
            split in `train` (default `mae_hf.validation.validation_indices` of its labels).

    Returns:
        `readout_scores`' result, with `"features"` (the feature set read) and `"num_parameters"` (None for pixels).
    """
    if model is None:
        key, f_train, f_test = "raw_pixels", train[0].flatten(1).numpy(), test[0].flatten(1).numpy()
    else:
        key = feature_set or next(iter(kind_of(model).scorecard_features.values()))
        f_train, f_test = features(model, train[0], key), features(model, test[0], key)
    scores = readout_scores(f_train, np.asarray(train[1]), f_test, np.asarray(test[1]), validation)
    n_params = None if model is None else int(sum(p.numel() for p in model.parameters()))
    return {"features": key, "num_parameters": n_params, **scores}


def field_protocol(models: dict, train: tuple, test: tuple, init_seed: int = 0) -> dict:
    """
    Every model, its randomly initialised twin (its kind's `build_like` under `init_seed`: the architecture with no
    training, the control for training itself) and the raw pixels, through the same readouts: the memory bank and the
    probes' training set is `train` (all of a dataset's training images), the probes' C is chosen on its validation
    split, and `test` (the official test split) is scored once per readout.

    Args:
        models: `{name: model}`. train, test: `(pixel_values, labels)`, `train` in dataset order.

    Returns:
        `{"settings": {...}, "rows": {name: readout(...), f"{name}_random_init": ..., "raw_pixels": ...}}`.
    """
    validation = validation_indices(np.asarray(train[1]))
    rows = {}
    for name, model in models.items():
        rows[name] = readout(model, train, test, validation)
        rows[f"{name}_random_init"] = readout(kind_of(model).build_like(model, init_seed), train, test, validation)
    rows["raw_pixels"] = readout(None, train, test, validation)
    settings = {
        "n_train": int(len(train[1])),
        "n_validation": int(len(validation)),
        "validation_seed": VALIDATION_SEED,
        "n_test": int(len(test[1])),
        "knn": [{"k": k, "temperature": t} for k, t in KNN_SETTINGS],
        "probe_cs": list(PROBE_CS),
        "low_label_fractions": list(LOW_LABEL_FRACTIONS),
        "low_label_seed": LOW_LABEL_SEED,
        "init_seed": init_seed,
    }
    return {"settings": settings, "rows": rows}


@torch.no_grad()
def mask_ratio_sweep(
    model, pixel_values: torch.Tensor, mean_image: torch.Tensor, ratios, seed: int = 0, batch_size: int = 500
) -> list[dict]:
    """
    Masked-region PSNR at each ratio, pooled over every masked pixel of every image (`compute_pooled_psnr`), beside
    the two baselines on the same pixels: predicting black, and predicting `mean_image` (1, C, H, W), the training
    set's mean.

    Returns:
        one `{"mask_ratio", "psnr_masked_pooled", "psnr_masked_mean" (per image, averaged), "black", "mean_image",
        "margin" (over the better baseline)}` per ratio.
    """
    rows = []
    for ratio in ratios:
        corruption = Corruption("mask", mask_ratio=float(ratio))
        values, rec = evaluate_images(model, pixel_values, corruption, seed=seed, batch_size=batch_size)
        guesses = {
            "model": rec.reconstruction,
            "black": torch.zeros_like(pixel_values),
            "mean": mean_image.expand_as(pixel_values),
        }
        psnr = {k: compute_pooled_psnr(guess, pixel_values, rec.pixel_mask) for k, guess in guesses.items()}
        rows.append(
            {
                "mask_ratio": float(ratio),
                "psnr_masked_pooled": psnr["model"],
                "psnr_masked_mean": float(np.nanmean(values["psnr_masked"])),
                "black": psnr["black"],
                "mean_image": psnr["mean"],
                "margin": psnr["model"] - max(psnr["black"], psnr["mean"]),
            }
        )
    return rows


def scorecard(model, test: tuple, trains: dict, mean_image: torch.Tensor, ratios=(), seed: int = 0) -> dict:
    """
    Everything above for one model: classifier scores for each training set of `trains` (`{name: (x, y)}`) on each
    of its kind's scorecard feature sets, its test metrics under its own corruption (masking at 0.75, or noise at
    0.5), and a mask-ratio sweep at `ratios`.
    """
    out = {
        key: {name: classifier_scores(model, train, test, feature_set) for name, train in trains.items()}
        for key, feature_set in kind_of(model).scorecard_features.items()
    }
    if own_corruption(model).kind == "mask":
        values, _ = evaluate_images(model, test[0], Corruption("mask", 0.75), seed=seed)
        out["psnr_masked_0.75"] = float(np.mean(values["psnr_masked"]))
        out["sweep"] = mask_ratio_sweep(model, test[0], mean_image, ratios, seed) if len(ratios) else []
    else:
        values, _ = evaluate_images(model, test[0], Corruption("noise", noise_factor=0.5), seed=seed)
        out["psnr_noisy_0.5"] = float(np.mean(values["psnr"]))
        out["ssim_noisy_0.5"] = float(np.mean(values["ssim"]))
    return out
