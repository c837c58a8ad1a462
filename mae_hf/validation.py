"""The validation split: a fixed, stratified part of the training images on which every choice is made, so that a
dataset's official test set is scored once per final model.

The rule, the same for every dataset: `validation_size(n)` images, 10,000 of 60,000 (one in six, at most 10,000),
stratified by class: each class gives its share of the split (largest remainders), and within a class the images
are the first of a permutation drawn by NumPy's legacy `RandomState(seed)` (a stream NumPy keeps stable across
versions) over that class's positions, in dataset order. Pretraining may use every training image (it reads no
label); classifiers that score a representation on validation are fit on the rest (`fit_indices`).

Pure: labels in, sorted indices out.
"""

import numpy as np

__all__ = ["VALIDATION_SEED", "MAX_VALIDATION", "validation_size", "validation_indices", "fit_indices"]

VALIDATION_SEED = 0
MAX_VALIDATION = 10_000


def validation_size(n: int) -> int:
    """How many of `n` training images are the validation split: one in six, at most `MAX_VALIDATION`."""
    return min(MAX_VALIDATION, n // 6)


def validation_indices(labels, size: int | None = None, seed: int = VALIDATION_SEED) -> np.ndarray:
    """
    The validation split of a training set, stratified by class (see the module docstring).

    Args:
        labels: (N,) class of each training image, in dataset order. size: default `validation_size(N)`.

    Returns:
        (size,) sorted int64 positions into the training set.
    """
    labels = np.asarray(labels)
    n = len(labels)
    size = validation_size(n) if size is None else int(size)
    if not 0 <= size < n:
        raise ValueError(f"A validation split of {size} images needs more than {size} training images, got {n}.")
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * size / n
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take), kind="stable")[: size - take.sum()]:  # largest remainders, ties by class
        take[i] += 1
    rng = np.random.RandomState(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def fit_indices(labels, size: int | None = None, seed: int = VALIDATION_SEED) -> np.ndarray:
    """The training images outside the validation split (where classifiers are fit): (N - size,) sorted."""
    n = len(np.asarray(labels))
    return np.setdiff1d(np.arange(n), validation_indices(labels, size, seed)).astype(np.int64)
