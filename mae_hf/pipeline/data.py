"""The images an analysis reads and the images its classifiers are fit on (`DataSettings`), decoded once and
cached."""

from dataclasses import dataclass, field

import numpy as np
import torch

from ..analysis.reconstruction import check_same_images
from ..data import dataset_to_tensors, load_image_dataset
from ..validation import fit_indices, validation_indices
from .cache import AnalysisCache, source_fingerprint

__all__ = ["DataSettings", "load_analysis_data", "VALIDATION"]

# The split name that means the training set's validation split (`mae_hf.validation`) for a dataset without one.
VALIDATION = "validation"


def _help(text: str) -> dict:
    return {"help": text}


@dataclass
class DataSettings:
    """
    Which images an analysis reads (the report's, the app's): flags of `mae-hf report` (`HfArgumentParser`).

    Attributes:
        dataset: any `mae_hf.load_image_dataset` source. split: the split analysed; `"validation"` for a dataset
            without one: its training set's validation split (`mae_hf.validation`), the classifiers fit on the rest.
        n: the first `n` images of `split` are analysed. n_train: the training images the kNN and the linear probe
            are fit on (the first of `train`; when `split` is `train`, the rows after the analysed ones).
        scorecard_n: the scorecard scores the first `scorecard_n` images of `split` (default: the `n` analysed).
        full_train: another source whose whole train split the scorecard's classifiers are also fit on.
    """

    dataset: str = field(default="mnist", metadata=_help("any load_image_dataset source (default: embedded mnist)"))
    split: str = field(
        default="test",
        metadata=_help(
            "split analysed (default: test); 'validation': the training set's validation split (mae_hf.validation), "
            "the classifiers then fit on the training images outside it"
        ),
    )
    n: int = field(default=1000, metadata=_help("images analysed, the first n of the split (default: 1000)"))
    n_train: int = field(
        default=2000, metadata=_help("train images the kNN and linear probe are fit on (default: 2000)")
    )
    scorecard_n: int | None = field(
        default=None,
        metadata=_help(
            "with --scorecard: images it scores, the first N of the split (default: --n; 10000: MNIST's whole test set)"
        ),
    )
    full_train: str | None = field(
        default=None,
        metadata=_help(
            "with --scorecard: also fit its 5-NN and probe on this source's whole train split (e.g. ylecun/mnist, or "
            "a folder of MNIST IDX files: the 60,000 digits)"
        ),
    )


def load_analysis_data(
    settings: DataSettings, models: dict | None = None, cache: "AnalysisCache | None" = None
) -> dict:
    """
    The analysed images (first `n` of `split`) and the images the classifiers are fit on (first `n_train` of
    `train`; when `split` is `train`, the `n_train` rows after the analysed ones).

    Args:
        settings: which images (`DataSettings`); with `scorecard_n` larger than `n`, the first `scorecard_n` images
            of the split are also returned (`score_x`, `score_y`; with `split="train"` the classifiers' rows come
            after them); with `full_train`, that source's whole train split (`full_train_x`, `full_train_y`).
        models: `{name: model}`; when given, the images are decoded at the size and channels they take (all the
            same: `mae_hf.analysis.reconstruction.check_same_images`).
        cache: caches the decoded tensors, keyed by the source (and local files' sizes and mtimes), split and sizes.

    Returns:
        `{"x": (n, C, H, W), "y": (n,), "train_x", "train_y", "class_names": list[str]}` (+ `full_train_x`,
        `full_train_y`, `score_x`, `score_y`).

    Raises:
        ValueError: unknown split, `n` larger than the split, images of another size than the models take.
    """
    dataset, split, n, n_train = settings.dataset, settings.split, settings.n, settings.n_train
    n_score, full_train = settings.scorecard_n, settings.full_train
    shape = check_same_images(models) if models else None
    cache = cache or AnalysisCache(None)
    n_all = max(n, n_score or 0)
    key = [source_fingerprint(dataset), split, n_all, n_train]
    loaded = cache.arrays("data", key, lambda: _decode_report_data(dataset, split, n_all, n_train))
    x_all, y_all = torch.from_numpy(loaded["x"]), torch.from_numpy(loaded["y"])
    x, y = x_all[:n], y_all[:n]
    s, c = shape if shape else (x.shape[2], x.shape[1])
    if tuple(x.shape[1:]) != (c, s, s):
        raise ValueError(
            f"The {dataset!r} images are {x.shape[1]}x{x.shape[2]}x{x.shape[3]} (CxHxW) but the models take {c}x{s}x{s}; "
            "use a dataset of the models' image size, or models trained on this one."
        )
    out = {
        "x": x,
        "y": y,
        "train_x": torch.from_numpy(loaded["train_x"]),
        "train_y": torch.from_numpy(loaded["train_y"]),
        "class_names": [str(c) for c in loaded["class_names"]],
    }
    if n_all > n:
        out["score_x"], out["score_y"] = x_all, y_all
    if full_train is not None:
        full = cache.arrays("data-full-train", [source_fingerprint(full_train)], lambda: _decode_train(full_train))
        out["full_train_x"], out["full_train_y"] = torch.from_numpy(full["x"]), torch.from_numpy(full["y"])
    return out


def _decode_report_data(dataset: str, split: str, n: int, n_train: int) -> dict[str, np.ndarray]:
    data = load_image_dataset(dataset)
    if split == VALIDATION and VALIDATION not in data and "train" in data:
        # the training set's validation split (`mae_hf.validation`); the classifiers are fit on the other rows
        labels = data["train"]["label"]
        ds, train = data["train"].select(validation_indices(labels)), data["train"].select(fit_indices(labels))
    elif split not in data:
        choices = [*data, VALIDATION] if "train" in data else list(data)
        raise ValueError(f"Dataset {dataset!r} has no split {split!r}; choose one of {choices}.")
    else:
        ds, train = data[split], data["train"]
    if not 1 <= n <= len(ds):
        raise ValueError(
            f"--n {n} is larger than the {split!r} split of {dataset!r} ({len(ds)} images); use {len(ds)} or less."
        )
    offset = n if split == "train" else 0
    n_train = min(n_train, len(train) - offset)
    if n_train < 10:
        raise ValueError(f"Only {n_train} train images are left to fit the classifiers on; lower --n.")
    x, y = dataset_to_tensors(ds, n=n)
    train_x, train_y = dataset_to_tensors(train.select(range(offset, offset + n_train)))
    if train_x.shape[1:] != x.shape[1:]:
        raise ValueError(
            f"The {dataset!r} train images are {tuple(train_x.shape[1:])} but the {split!r} ones {tuple(x.shape[1:])}."
        )
    names = ds.features["label"].names if hasattr(ds.features["label"], "names") else sorted(map(str, set(y.tolist())))
    return {
        "x": x.numpy(),
        "y": y.numpy(),
        "train_x": train_x.numpy(),
        "train_y": train_y.numpy(),
        "class_names": np.array(names, dtype=str),
    }


def _decode_train(source: str) -> dict[str, np.ndarray]:
    x, y = dataset_to_tensors(load_image_dataset(source)["train"])
    return {"x": x.numpy(), "y": y.numpy()}
