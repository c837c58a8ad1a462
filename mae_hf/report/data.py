"""The images a report analyses and the images its classifiers are fit on, decoded once and cached."""

import numpy as np
import torch

from ..analysis.reconstruction import check_same_images
from ..data import dataset_to_tensors, load_image_dataset
from .cache import AnalysisCache, source_fingerprint

__all__ = ["load_report_data"]


def load_report_data(
    dataset: str,
    split: str,
    n: int,
    n_train: int,
    models: dict | None = None,
    cache: "AnalysisCache | None" = None,
    full_train: str | None = None,
    n_score: int | None = None,
) -> dict:
    """
    The analysed images (first `n` of `split`) and the images the classifiers are fit on (first `n_train` of
    `train`; when `split` is `train`, the `n_train` rows after the analysed ones).

    Args:
        models: `{name: model}`; when given, the images are decoded at the size and channels they take (all the
            same: `mae_hf.analysis.reconstruction.check_same_images`).
        cache: caches the decoded tensors, keyed by the source (and local files' sizes and mtimes), split and sizes.
        full_train: another source whose whole train split is also returned (`full_train_x`, `full_train_y`), to fit
            the scorecard's classifiers on all of it too (e.g. MNIST's 60,000 training digits).
        n_score: when larger than `n`, the first `n_score` images of `split` are also returned (`score_x`,
            `score_y`) for the scorecard (e.g. all 10,000 official test digits while the figures analyse fewer);
            with `split="train"` the classifiers' rows come after them.

    Returns:
        `{"x": (n, C, H, W), "y": (n,), "train_x", "train_y", "class_names": list[str]}` (+ `full_train_x`,
        `full_train_y`, `score_x`, `score_y`).

    Raises:
        ValueError: unknown split, `n` larger than the split, images of another size than the models take.
    """
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
    if split not in data:
        raise ValueError(f"Dataset {dataset!r} has no split {split!r}; choose one of {list(data)}.")
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
