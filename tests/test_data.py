import gzip
import struct
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Image
from PIL import Image as PILImage

from mae_hf.data import (
    collate_pixel_values,
    dataset_to_tensors,
    load_image_dataset,
    read_idx,
    to_pixel_values,
    with_pixel_values,
)


def write_idx(path, array, gz=False, truncate=0):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    data = data[: len(data) - truncate]
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(data)


def make_idx_folder(folder, n_train=30, n_test=10, gz=False, label_count=None):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    sfx = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_train, 28, 28)), gz)
    write_idx(folder / f"train-labels-idx1-ubyte{sfx}", np.arange(label_count or n_train) % 10, gz)
    write_idx(folder / f"t10k-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_test, 28, 28)), gz)
    write_idx(folder / f"t10k-labels-idx1-ubyte{sfx}", np.arange(n_test) % 10, gz)
    return folder


def check_schema(dsd):
    assert set(dsd) == {"train", "test"}
    for split in dsd.values():
        assert isinstance(split.features["image"], Image)
        assert isinstance(split.features["label"], ClassLabel)


def test_embedded_mnist_split_and_balance(mnist):
    check_schema(mnist)
    assert len(mnist["train"]) == 4000 and len(mnist["test"]) == 10000
    assert np.all(np.bincount(mnist["train"]["label"]) == 400)
    # the test split is MNIST's official test set, shipped with the package: its known class counts and first labels
    assert np.bincount(mnist["test"]["label"]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert mnist["test"]["label"][:10] == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert mnist["train"].features["label"].names == [str(i) for i in range(10)]
    x, y = dataset_to_tensors(mnist["test"], n=10)
    assert x.shape == (10, 1, 28, 28) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() == 1.0 and y.shape == (10,)
    again = load_image_dataset("mnist")
    assert again["train"]["label"][:50] == mnist["train"]["label"][:50]  # fixed seed


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder(tmp_path, gz):
    dsd = load_image_dataset(str(make_idx_folder(tmp_path / "idx", gz=gz)))
    check_schema(dsd)
    assert len(dsd["train"]) == 30 and len(dsd["test"]) == 10
    arr = read_idx(tmp_path / "idx" / ("train-images-idx3-ubyte" + (".gz" if gz else "")))
    x, _ = dataset_to_tensors(dsd["train"], n=2)
    assert torch.allclose(x[:, 0] * 255, torch.from_numpy(arr[:2].astype(np.float32)))


def test_idx_errors(tmp_path):
    folder = make_idx_folder(tmp_path / "a", label_count=29)
    with pytest.raises(ValueError, match="30 images but 29 labels"):
        load_image_dataset(str(folder))
    folder = make_idx_folder(tmp_path / "b")
    write_idx(folder / "train-images-idx3-ubyte", np.zeros((30, 28, 28)), truncate=100)
    with pytest.raises(ValueError, match="truncated"):
        load_image_dataset(str(folder))
    folder = make_idx_folder(tmp_path / "c")
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ValueError, match="missing.*t10k-labels"):
        load_image_dataset(str(folder))
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "bad")


def write_pngs(folder, classes=("cat", "dog"), per_class=6, mode="L", size=12, seed=0):
    """Random images in one sub-folder per class; returns {(class, image bytes)} of what was written."""
    rng = np.random.default_rng(seed)
    written = set()
    for c in classes:
        (folder / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = (size, size) if mode == "L" else (size, size, 3)
            array = rng.integers(0, 256, shape).astype(np.uint8)
            PILImage.fromarray(array, mode=mode).save(folder / c / f"{i}.png")
            written.add((c, array.tobytes()))
    return written


def rows(split):
    """{(class name, image bytes)} of a loaded split."""
    names = split.features["label"].names
    return {(names[label], np.asarray(image).tobytes()) for image, label in zip(split["image"], split["label"])}


# The imagefolder and parquet sources are datasets' own loaders; the suite runs offline (conftest sets
# HF_DATASETS_OFFLINE), so these tests also show they need no network. Their Arrow caches go to tmp_path.


def test_imagefolder_flat_and_split(tmp_path):
    assert datasets.config.HF_HUB_OFFLINE
    cache = str(tmp_path / "hf-cache")
    written = write_pngs(tmp_path / "flat", per_class=10)
    dsd = load_image_dataset(str(tmp_path / "flat"), test_size=0.2, cache_dir=cache)
    check_schema(dsd)
    assert len(dsd["train"]) == 16 and len(dsd["test"]) == 4
    assert dsd["train"].features["label"].names == dsd["test"].features["label"].names == ["cat", "dog"]
    assert sorted(np.bincount(dsd["test"]["label"])) == [2, 2]  # stratified
    assert rows(dsd["train"]) | rows(dsd["test"]) == written  # every image once, labelled by its folder
    again = load_image_dataset(str(tmp_path / "flat"), test_size=0.2, cache_dir=cache)
    assert rows(again["test"]) == rows(dsd["test"])  # the same seed, the same split

    train = write_pngs(tmp_path / "split" / "train", mode="RGB")
    test = write_pngs(tmp_path / "split" / "test", classes=("cat", "dog", "eel"), per_class=2, mode="RGB", seed=1)
    dsd = load_image_dataset(str(tmp_path / "split"), cache_dir=cache)
    assert len(dsd["train"]) == 12 and len(dsd["test"]) == 6
    assert rows(dsd["train"]) == train and rows(dsd["test"]) == test  # the folder's splits kept
    # one set of class names for both splits, even for a class that only one split has
    assert dsd["train"].features["label"].names == dsd["test"].features["label"].names == ["cat", "dog", "eel"]
    x, _ = dataset_to_tensors(dsd["test"])
    assert x.shape == (6, 3, 12, 12)


def test_imagefolder_validation_folder_and_one_class(tmp_path):
    """A `validation/` folder is the test split (not a class named "validation"); a single class folder loads."""
    cache = str(tmp_path / "hf-cache")
    write_pngs(tmp_path / "tv" / "train")
    held_out = write_pngs(tmp_path / "tv" / "validation", per_class=2, seed=1)
    dsd = load_image_dataset(str(tmp_path / "tv"), cache_dir=cache)
    assert dsd["train"].features["label"].names == ["cat", "dog"] and rows(dsd["test"]) == held_out

    write_pngs(tmp_path / "one", classes=("digit",), per_class=10)
    dsd = load_image_dataset(str(tmp_path / "one"), test_size=0.3, cache_dir=cache)
    check_schema(dsd)
    assert dsd["train"].features["label"].names == ["digit"] and (len(dsd["train"]), len(dsd["test"])) == (7, 3)


def test_imagefolder_corrupt_file(tmp_path):
    write_pngs(tmp_path / "f")
    (tmp_path / "f" / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ValueError, match="broken.png.*cannot be decoded"):
        load_image_dataset(str(tmp_path / "f"), cache_dir=str(tmp_path / "hf-cache"))


def test_parquet(tmp_path):
    rng = np.random.default_rng(0)
    imgs = [PILImage.fromarray(rng.integers(0, 256, (8, 8)).astype(np.uint8)) for _ in range(20)]
    # a Hub-like parquet: column names to detect, plain int labels
    ds = Dataset.from_dict({"img": imgs, "fine_label": [i % 4 for i in range(20)], "extra": list(range(20))})
    ds = ds.cast_column("img", Image())
    ds.to_parquet(str(tmp_path / "data.parquet"))
    cache = str(tmp_path / "hf-cache")
    dsd = load_image_dataset(str(tmp_path / "data.parquet"), test_size=0.25, cache_dir=cache)
    check_schema(dsd)
    assert len(dsd["train"]) == 15 and len(dsd["test"]) == 5
    assert dsd["train"].column_names == ["image", "label"]
    assert sorted(np.bincount(dsd["test"]["label"])) == [1, 1, 1, 2]  # stratified
    by_bytes = {np.asarray(im).tobytes(): i % 4 for i, im in enumerate(imgs)}
    assert all(by_bytes[np.asarray(im).tobytes()] == y for im, y in zip(dsd["test"]["image"], dsd["test"]["label"]))
    # a folder with train/test parquet files keeps its splits (several shards each), whatever lies beside them
    (tmp_path / "pq").mkdir()
    ds.select(range(7)).to_parquet(str(tmp_path / "pq" / "train-00000-of-00002.parquet"))
    ds.select(range(7, 12)).to_parquet(str(tmp_path / "pq" / "train-00001-of-00002.parquet"))
    ds.select(range(12, 20)).to_parquet(str(tmp_path / "pq" / "test-00000.parquet"))
    (tmp_path / "pq" / "README.md").write_text("# a dataset card\n")
    (tmp_path / "pq" / "train_log.csv").write_text("step,loss\n1,0.5\n")
    dsd = load_image_dataset(str(tmp_path / "pq"), cache_dir=cache)
    assert len(dsd["train"]) == 12 and len(dsd["test"]) == 8
    assert dsd["test"]["label"] == [i % 4 for i in range(12, 20)]
    # a validation file is the test split
    (tmp_path / "pq" / "test-00000.parquet").rename(tmp_path / "pq" / "validation-00000.parquet")
    assert load_image_dataset(str(tmp_path / "pq"), cache_dir=cache)["test"]["label"] == [i % 4 for i in range(12, 20)]
    no_label = Dataset.from_dict({"img": imgs}).cast_column("img", Image())
    no_label.to_parquet(str(tmp_path / "nolabel.parquet"))
    with pytest.raises(ValueError, match="label column"):
        load_image_dataset(str(tmp_path / "nolabel.parquet"), cache_dir=cache)
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really parquet")
    with pytest.raises(ValueError, match="Cannot read parquet .*bad.parquet"):
        load_image_dataset(str(tmp_path / "bad.parquet"), cache_dir=cache)


def test_unknown_and_offline_sources(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="Unknown dataset source 'fashion'"):
        load_image_dataset("fashion")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="source='mnist'"):
        load_image_dataset("ylecun/mnist", cache_dir=str(tmp_path / "cache"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "no-images" / "sub").mkdir(parents=True)
    (tmp_path / "no-images" / "sub" / "notes.txt").write_text("no images here")
    for folder in ("empty", "no-images"):
        with pytest.raises(ValueError, match="no MNIST IDX files, no parquet files and no class sub-folders"):
            load_image_dataset(str(tmp_path / folder), cache_dir=str(tmp_path / "hf-cache"))
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="parquet"):
        load_image_dataset(str(tmp_path / "x.txt"))


def test_transforms_gray_rgb_16bit():
    gray = PILImage.fromarray(np.full((28, 28), 255, np.uint8))
    rgb = PILImage.fromarray(np.zeros((28, 28, 3), np.uint8))
    assert to_pixel_values([gray]).shape == (1, 1, 28, 28)
    assert to_pixel_values([rgb]).shape == (1, 3, 28, 28)
    assert to_pixel_values([rgb], num_channels=1).shape == (1, 1, 28, 28)
    assert to_pixel_values([gray], num_channels=3).shape == (1, 3, 28, 28)
    deep = PILImage.fromarray(np.linspace(0, 65535, 28 * 28).reshape(28, 28).astype(np.uint16))
    x = to_pixel_values([deep])
    assert x.min() == 0 and x.max() == 1
    assert to_pixel_values([gray], image_size=14).shape == (1, 1, 14, 14)
    with pytest.raises(ValueError, match="different shapes"):
        to_pixel_values([gray, gray.resize((10, 10))])


def test_with_pixel_values_and_collate(mnist):
    view = with_pixel_values(mnist["test"])
    rows = [view[i] for i in range(4)]
    batch = collate_pixel_values(rows)
    assert batch["pixel_values"].shape == (4, 1, 28, 28) and batch["labels"].tolist() == mnist["test"]["label"][:4]
    with pytest.raises(ValueError, match="between 1 and"):
        dataset_to_tensors(mnist["test"], n=10001)


def test_an_idx_folder_of_a_known_dataset_names_its_classes(idx_dataset, monkeypatch):
    """A folder whose labels are a public dataset's (`KNOWN_IDX_DATASETS`, recognised by their sha256) gets that
    dataset's class names (Fashion-MNIST's "T-shirt/top", ...), as its Hub copy has them; any other keeps 0..9."""
    import hashlib

    from mae_hf import data as data_module
    from mae_hf.data import load_image_dataset, read_idx
    from mae_hf.profiles import FASHION_MNIST_CLASSES

    assert load_image_dataset(idx_dataset)["train"].features["label"].names == [str(i) for i in range(10)]
    folder = Path(idx_dataset)
    hashes = {
        split: hashlib.sha256(read_idx(folder / f"{prefix}-labels-idx1-ubyte").tobytes()).hexdigest()
        for split, prefix in (("train", "train"), ("test", "t10k"))
    }
    known = {"name": "Known", "labels_sha256": hashes, "class_names": list(FASHION_MNIST_CLASSES)}
    monkeypatch.setitem(data_module.KNOWN_IDX_DATASETS, "someone/known", known)
    loaded = load_image_dataset(idx_dataset)
    assert loaded["test"].features["label"].names == list(FASHION_MNIST_CLASSES)
    assert loaded["test"].features["label"].int2str(9) == "Ankle boot"
