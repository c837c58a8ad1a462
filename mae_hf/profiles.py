"""Datasets as profiles: what the project needs to know about the images a pair of models was trained on.

A `DatasetProfile` carries what was once written for MNIST all over the app: the image size and channels, the class
names, what an uploaded or drawn picture must go through to look like the training data, the examples to show, the
dataset the app analyses, and the words the page uses ("digit", "item"). The profiles here:

- `"digits"` (MNIST): white ink on black, cropped and scaled into a 20×20 box, centred by centre of mass in 28×28
  (`mae_hf.digits.preprocess_digit`, the way MNIST was made);
- `"clothing"` (Fashion-MNIST): the item trimmed from its background, its longest side scaled to 28, centred, and
  negated so it is light on black (the way Fashion-MNIST was made from product photos);
- `"rgb"` (any colour images, e.g. CIFAR-10): the shorter side scaled to the models' size, the centre cropped.

A trained model folder says which profile it belongs to: `dataset_profile` in its `config.json` (an attribute plain
transformers keeps and ignores). A folder without one is `"digits"` with one channel, `"rgb"` with three.
Standard library and NumPy/PIL only: the app builds its page from a profile before torch is imported.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "DatasetProfile",
    "PROFILES",
    "register_profile",
    "profile_for",
    "profile_of_config",
    "profile_of_dataset",
    "prepare_item",
    "prepare_rgb",
]

REPO_EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass(frozen=True)
class DatasetProfile:
    """
    One kind of training data.

    Attributes:
        name: its key (`config.dataset_profile`). title: on the page ("MNIST digits"). noun / nouns: one image of it
            in words, after "a" and "the" ("digit", "digits"; "clothing item").
        num_channels: 1 or 3. image_size: the side the data has (None: the models' size decides).
        class_names: the classes' names, by label.
        prepare: `(picture, image_size, num_channels) -> (C, H, W) float32 in [0, 1]`, any picture (a path, bytes,
            an array, a PIL image or a Sketchpad value) made to look like the training data.
        dataset: the source the app analyses (`mae_hf.load_image_dataset`).
        examples: a folder of example PNGs from the test set, or None.
        hint: one sentence for the page on how pictures are prepared.
        sources: dataset sources (`mae_hf.load_image_dataset` names) that are this profile's data, for a training
            run to name the profile of what it trained on.
    """

    name: str
    title: str
    noun: str
    nouns: str
    num_channels: int
    prepare: Callable
    image_size: int | None = None
    class_names: tuple = ()
    dataset: str | None = None
    examples: str | None = None
    hint: str = ""
    sources: tuple = ()


PROFILES: dict[str, DatasetProfile] = {}


def register_profile(profile: DatasetProfile, replace: bool = False) -> DatasetProfile:
    """Add `profile` to `PROFILES`; `replace=True` to redefine an existing name."""
    if profile.name in PROFILES and not replace:
        raise ValueError(f"A dataset profile {profile.name!r} is registered already; pass replace=True to redefine it.")
    if profile.num_channels not in (1, 3):
        raise ValueError(f"A profile's images have 1 or 3 channels, got {profile.num_channels}.")
    PROFILES[profile.name] = profile
    return profile


def profile_for(name: str) -> DatasetProfile:
    """The registered profile `name`; `ValueError` naming the registered ones otherwise."""
    if name not in PROFILES:
        raise ValueError(f"Unknown dataset profile {name!r}; the registered ones are {', '.join(PROFILES)}.")
    return PROFILES[name]


def profile_of_config(config: dict) -> DatasetProfile:
    """The profile a model's `config.json` (as a dict) belongs to: its `dataset_profile`, else by its channels."""
    name = config.get("dataset_profile") or ("rgb" if config.get("num_channels") == 3 else "digits")
    return profile_for(name)


def profile_of_dataset(source: str, class_names, num_channels: int) -> str | None:
    """
    The profile a dataset's images belong to, for a training run to write into its model's config: the profile
    listing `source` among its sources, else the one whose class names and channels are the dataset's; three
    channels are `"rgb"`; None when nothing says (a folder of grayscale images: pass `--dataset_profile`).
    """
    key = source.lower().rstrip("/")
    for profile in PROFILES.values():
        if key in profile.sources and profile.num_channels == num_channels:
            return profile.name
    names = tuple(str(c) for c in class_names)
    for profile in PROFILES.values():
        if profile.class_names and profile.class_names == names and profile.num_channels == num_channels:
            return profile.name
    return "rgb" if num_channels == 3 else None


# ----------------------------------------------------------------------------------------------------------------
# Preparing a picture


def _prepare_digit(picture, image_size: int, num_channels: int) -> np.ndarray:
    from .digits import preprocess_digit

    return preprocess_digit(picture, size=image_size)[None]  # (1, H, W)


def _open(picture) -> Image.Image:
    from .digits import open_image, sketch_to_image

    return sketch_to_image(picture) if isinstance(picture, dict) else open_image(picture)


def prepare_item(picture, image_size: int = 28, num_channels: int = 1) -> np.ndarray:
    """
    A picture of a piece of clothing (or any object on a plain background) made the way Fashion-MNIST was made from
    product photos: the background (the border's median) trimmed away, the longest side scaled to `image_size`, the
    item centred and negated so it is light on black; a drawing's ink (its alpha) is the item. An image of exactly
    `image_size`² is taken as already formatted (negated only if its background is light).

    Returns:
        (1, H, W) float32 in [0, 1].

    Raises:
        mae_hf.digits.DigitImageError: an unreadable, blank or oversized picture (the same checks as a digit's).
    """
    from .digits import DigitImageError, image_to_ink

    image = _open(picture)
    if image.mode in ("RGBA", "LA", "PA") and np.asarray(image.getchannel("A")).min() < 250:
        item = image_to_ink(image)  # a drawing: the strokes are the item
    else:
        gray = np.asarray(image.convert("L").reduce(max(1, max(image.size) // 1024)), dtype=np.float64) / 255.0
        if gray.max() - gray.min() < 1e-3:
            raise DigitImageError("The image is blank: every pixel is the same colour. Upload a photo of an item.")
        border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
        background = float(np.median(border))
        item = np.abs(gray - background)  # the item differs from its background, whatever their shades
        if max(gray.shape) == image_size:
            item = 1.0 - gray if background > 0.5 else gray
            return item.astype(np.float32)[None]
    rows, cols = np.nonzero(item > 0.1 * item.max())
    if rows.size == 0:
        raise DigitImageError("No item found: the image has too little contrast with its background.")
    crop = item[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    h, w = crop.shape
    scale = image_size / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = Image.fromarray((crop / crop.max()).astype(np.float32), mode="F").resize(
        (new_w, new_h), Image.Resampling.LANCZOS
    )
    out = np.zeros((image_size, image_size), np.float32)
    top, left = (image_size - new_h) // 2, (image_size - new_w) // 2
    out[top : top + new_h, left : left + new_w] = np.clip(np.asarray(resized), 0.0, 1.0)
    return out[None]


def prepare_rgb(picture, image_size: int = 32, num_channels: int = 3) -> np.ndarray:
    """
    Any colour picture at the models' size: its shorter side scaled to `image_size` (antialiased), the centre
    cropped; a drawing is flattened onto white.

    Returns:
        (3, H, W) float32 in [0, 1].
    """
    image = _open(picture)
    if image.mode in ("RGBA", "LA", "PA", "P"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(flat, rgba)
    image = image.convert("RGB")
    scale = image_size / min(image.size)
    size = (max(image_size, round(image.size[0] * scale)), max(image_size, round(image.size[1] * scale)))
    image = image.resize(size, Image.Resampling.LANCZOS)
    left, top = (size[0] - image_size) // 2, (size[1] - image_size) // 2
    image = image.crop((left, top, left + image_size, top + image_size))
    return (np.asarray(image, dtype=np.float32) / 255.0).transpose(2, 0, 1)  # (3, H, W)


# Fashion-MNIST's classes by label, as its README names them.
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

register_profile(
    DatasetProfile(
        name="digits",
        title="MNIST digits",
        noun="digit",
        nouns="digits",
        num_channels=1,
        image_size=28,
        class_names=tuple(str(i) for i in range(10)),
        prepare=_prepare_digit,
        dataset="mnist",
        sources=("mnist", "ylecun/mnist"),
        examples=str(REPO_EXAMPLES),
        hint="Drawings and photos are made MNIST-like: grayscale, white ink on black, cropped to the digit, scaled to "
        "fit 20×20 and centred by centre of mass in 28×28.",
    )
)
register_profile(
    DatasetProfile(
        name="clothing",
        title="Fashion-MNIST clothing",
        noun="clothing item",
        nouns="clothing items",
        num_channels=1,
        image_size=28,
        class_names=FASHION_MNIST_CLASSES,
        prepare=prepare_item,
        dataset="zalando-datasets/fashion_mnist",
        sources=("fashion_mnist", "zalando-datasets/fashion_mnist"),
        examples=str(REPO_EXAMPLES / "fashion-mnist"),
        hint="Photos are made Fashion-MNIST-like: the item trimmed from its background, its longest side scaled to "
        "28, centred, grayscale and negated (light item on black).",
    )
)
register_profile(
    DatasetProfile(
        name="rgb",
        title="colour images",
        noun="picture",
        nouns="pictures",
        num_channels=3,
        prepare=prepare_rgb,
        hint="Pictures are scaled so their shorter side fits the models' size, and their centre is cropped.",
    )
)
