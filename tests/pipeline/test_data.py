"""Which images an analysis reads: the validation split of a dataset that has none."""

import numpy as np
import pytest

from mae_hf.data import dataset_to_tensors, load_image_dataset
from mae_hf.pipeline import DataSettings, load_analysis_data
from mae_hf.validation import fit_indices, validation_indices


def test_the_validation_split_is_the_training_sets_and_the_classifiers_fit_on_the_rest(idx_dataset):
    """`split="validation"` on an IDX folder (train and test only): the analysed images are the first of the training
    set's validation split (`mae_hf.validation`), the classifiers' images the first of the rows outside it; the two
    never share an image and the test split is not read."""
    train = load_image_dataset(idx_dataset)["train"]
    x_all, y_all = dataset_to_tensors(train)
    held, rest = validation_indices(y_all.numpy()), fit_indices(y_all.numpy())
    assert len(held) == 16 and len(rest) == 80  # one in six of 96

    data = load_analysis_data(DataSettings(idx_dataset, "validation", n=10, n_train=30))
    assert np.array_equal(data["x"].numpy(), x_all[held[:10]].numpy())
    assert np.array_equal(data["y"].numpy(), y_all[held[:10]].numpy())
    assert np.array_equal(data["train_x"].numpy(), x_all[rest[:30]].numpy())
    assert not set(held[:10]) & set(rest[:30])

    with pytest.raises(ValueError, match="larger than the 'validation' split"):
        load_analysis_data(DataSettings(idx_dataset, "validation", n=17, n_train=30))
    with pytest.raises(ValueError, match=r"no split 'dev'; choose one of \['train', 'test', 'validation'\]"):
        load_analysis_data(DataSettings(idx_dataset, "dev", n=10, n_train=30))
