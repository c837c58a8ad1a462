"""The validation split: fixed, stratified, the same rule for every dataset."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

from mae_hf.validation import fit_indices, validation_indices, validation_size

SHARED = Path(__file__).resolve().parents[2] / "shared"


def test_the_split_is_one_in_six_at_most_ten_thousand_stratified_and_fixed():
    rng = np.random.default_rng(1)
    labels = rng.choice(10, size=60_000, p=np.linspace(1, 2, 10) / np.linspace(1, 2, 10).sum())
    held = validation_indices(labels)
    assert validation_size(60_000) == len(held) == 10_000 and validation_size(600) == 100
    assert np.all(np.diff(held) > 0)  # sorted, no repeats
    share = np.bincount(labels[held], minlength=10) / len(held)
    np.testing.assert_allclose(share, np.bincount(labels, minlength=10) / len(labels), atol=1.5e-4)  # ± 1 image
    np.testing.assert_array_equal(held, validation_indices(labels))  # the same every time
    assert not np.array_equal(held, validation_indices(labels, seed=1))
    fit = fit_indices(labels)
    assert len(fit) == 50_000 and not np.intersect1d(fit, held).size
    with pytest.raises(ValueError, match="needs more than"):
        validation_indices(labels[:5], size=5)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_the_official_training_sets_validation_split_is_the_documented_one(name):
    """The 10,000 indices of MNIST's and Fashion-MNIST's 60,000 training images never change (their hash is fixed
    here): every choice made on them stays comparable."""
    folder = SHARED / name
    if not folder.is_dir():
        pytest.skip(f"needs {folder} (MNIST's and Fashion-MNIST's IDX files)")
    from mae_hf.data import read_idx

    labels = read_idx(folder / "train-labels-idx1-ubyte.gz")
    held = validation_indices(labels)
    digest = hashlib.sha256(held.tobytes()).hexdigest()[:16]
    assert len(held) == 10_000 and np.bincount(labels[held]).min() > 850
    assert digest == {"mnist": "24d2cb21a19283a0", "fashion-mnist": "b62f1359020fad94"}[name], digest
