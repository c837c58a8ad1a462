"""Turn any picture of a digit into a 28×28 MNIST-style input, the way MNIST itself was made.

MNIST's digits are white ink on black, cropped to the digit's bounding box, scaled (keeping the aspect ratio,
anti-aliased) to fit a 20×20 box, and placed in a 28×28 field so that the centre of mass of the ink sits at the
centre. `preprocess_digit` does exactly that to an image of any size or mode:

1. open it (path, bytes, file object, PIL image or array), refusing what is not a readable image, or what
   is too large or too thin, from its header, before decoding: one request may decode at most `MAX_PIXELS` pixels
   in all (a drawing's background and layers together, at most `MAX_LAYERS` of them), none longer than
   `MAX_ASPECT` times its width; a drawing's composite, when it comes with one, is all that is read;
2. get the *ink* as floats in [0, 1]: the alpha channel when the image has real transparency (a drawing on a
   transparent canvas, as `gr.Sketchpad` returns), else the luminance, inverted when the background (the
   border's median) is light; for a photo, the paper is estimated locally and only the largest strokes above an
   adaptive threshold are kept (`photo_ink`), so uneven light, noise and ruled or tinted paper are not ink;
3. crop to the ink's bounding box, scale to fit 20×20, centre by centre of mass in 28×28.

Every failure raises `DigitImageError` (a `ValueError`) whose message says what is wrong and what to do.
Pure: no I/O besides reading the image handed in; no gradio.
"""

import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

logger = logging.getLogger(__name__)

__all__ = [
    "MNIST_SIZE",
    "DIGIT_BOX",
    "MAX_PIXELS",
    "MAX_LAYERS",
    "MAX_ASPECT",
    "DigitImageError",
    "too_large",
    "not_numbers",
    "unreadable",
    "open_image",
    "image_to_ink",
    "photo_ink",
    "sketch_to_image",
    "center_digit",
    "preprocess_digit",
]

MNIST_SIZE = 28
DIGIT_BOX = 20
# The pixels one request may decode, all its images together; more is refused from the headers, before decoding (a
# 10,000×10,000 RGBA image alone is 400 MB).
MAX_PIXELS = 40_000_000
# A drawing's background and layers: at most this many layers besides the background.
MAX_LAYERS = 8
# The long side at most this many times the short one (a 1×39,000,000 strip is within MAX_PIXELS but no digit).
MAX_ASPECT = 20
# Images are shrunk (box filter, fast) to this long side before the float work; a digit stays far above 20 px.
WORKING_SIZE = 1024
# Ink below this (after background removal, on [0, 1]) counts as empty paper.
INK_THRESHOLD = 0.1


class DigitImageError(ValueError):
    """An input that cannot become a digit image; the message says why and what to do instead."""


def too_large(pixels: int | None = None, size: tuple[int, int] | None = None, what: str = "The image") -> str:
    """The message for an image, or a request's images together (`what`), over `MAX_PIXELS`: `pixels` and the
    `size` (width, height) where known."""
    if pixels is None:
        amount = "over PIL's own safety limit"
    else:
        amount = f"{size[0]}×{size[1]} = " if size else ""
        amount += f"{pixels / 1e6:.0f} megapixels"
    return (
        f"{what} is too large: {amount} (the limit is {MAX_PIXELS / 1e6:.0f} megapixels). Downscale it (a digit "
        "needs only a few hundred pixels) and send it again."
    )


def not_numbers(count: int | None = None) -> str:
    """The message for an image with (`count`) pixels that are NaN or infinite."""
    return (
        f"The image holds {count or 'some'} pixels that are not numbers (NaN or infinity). Send pixel values in "
        "[0, 1] or [0, 255]."
    )


def _check_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise DigitImageError(f"The image has no pixels ({width}×{height}). Upload a picture of a digit.")
    if width * height > MAX_PIXELS:
        raise DigitImageError(too_large(width * height, (width, height)))
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise DigitImageError(
            f"The image is {width}×{height} pixels: more than {MAX_ASPECT} times longer than it is wide, so it cannot "
            "hold a digit. Crop it to the digit and upload it again."
        )


def unreadable(name: str = "The uploaded file") -> str:
    """The message for a file that cannot be read as an image (corrupt, truncated, missing or not allowed): one
    wording for all of them, so a message never tells whether some file exists."""
    return f"{name} could not be decoded: the file is corrupt or truncated. Save it again as PNG or JPEG and upload it."


def open_image(source, decode: bool = True) -> Image.Image:
    """
    Open an image from a path, bytes, a binary file object, a PIL image or an array, refusing bad input early.

    The size is checked from the header, before the pixels are decoded, so a huge or needle-thin image is refused at
    once. With `decode=False` the pixels are not decoded yet (PIL decodes them on first use, or on `load()`), so a
    caller can check several headers against one budget first.

    Raises:
        DigitImageError: not an image PIL can read, a corrupt or truncated file, no pixels, over `MAX_PIXELS`, or
            over `MAX_ASPECT`.
    """
    if source is None:
        raise DigitImageError("No image was given. Draw a digit, upload a picture, or pick an example.")
    if isinstance(source, Image.Image):
        _check_size(*source.size)
        return source
    if isinstance(source, np.ndarray):
        return _array_to_image(source)
    if isinstance(source, (bytes, bytearray)):
        fp, name = io.BytesIO(source), "the uploaded data"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise DigitImageError(unreadable(f"{path.name!r}"))
        fp, name = path, f"{path.name!r}"
    elif hasattr(source, "read"):
        fp, name = source, "the uploaded file"
    else:
        raise DigitImageError(
            f"Cannot read an image from a {type(source).__name__}; give a file path, bytes, a PIL image or an array."
        )
    try:
        with warnings.catch_warnings():
            # Our own MAX_PIXELS check below replaces PIL's decompression-bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(fp)
            _check_size(*image.size)
            if decode:
                image.load()
    except DigitImageError:
        raise
    except UnidentifiedImageError as err:
        raise DigitImageError(
            f"{name} is not an image (or not a format this app reads). Upload a PNG, JPEG, GIF, BMP, TIFF or WebP."
        ) from err
    except Image.DecompressionBombError as err:  # PIL's own limit, far above ours: its header announces even more
        raise DigitImageError(too_large()) from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        logger.debug("Could not decode %s: %s", name, err)
        raise DigitImageError(unreadable(name)) from err
    return image


def _decode(image: Image.Image, name: str = "The uploaded file") -> Image.Image:
    """Decode an image opened with `open_image(..., decode=False)`; a corrupt or truncated file is refused."""
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        logger.debug("Could not decode %s: %s", name, err)
        raise DigitImageError(unreadable(name)) from err
    return image


def _array_to_image(array: np.ndarray) -> Image.Image:
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise DigitImageError(f"An image array must be (H, W), (H, W, 3) or (H, W, 4), got shape {arr.shape}.")
    _check_size(arr.shape[1], arr.shape[0])
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise DigitImageError(not_numbers(int((~np.isfinite(arr)).sum())))
        arr = arr.astype(np.float64)
        scale = 255.0 if arr.max(initial=0.0) <= 1.0 else 1.0
        arr = np.clip(arr * scale, 0, 255).astype(np.uint8)
    elif arr.dtype == np.uint16 and arr.ndim == 2:
        return Image.fromarray(arr)  # 'I;16'
    elif arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def _shrink(image: Image.Image) -> Image.Image:
    """Box-filter down to `WORKING_SIZE` on the long side (integer factor, fast); small images pass through."""
    factor = max(image.size) // WORKING_SIZE
    if factor < 2:
        return image
    if image.mode.startswith("I;16"):
        image = image.convert("I")
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        image = image.convert("RGBA")
    return image.reduce(factor)


# EXIF orientation → the transposition that makes the picture upright (as `PIL.ImageOps.exif_transpose`), applied
# after shrinking, so a large photo is never copied at full size.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except (TypeError, ValueError, OSError, SyntaxError):  # a damaged EXIF block: taken as upright
        return 1


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    method = _UPRIGHT.get(orientation)
    return image if method is None else image.transpose(method)


def _gray_and_alpha(image: Image.Image, source_mode: str) -> tuple[np.ndarray, np.ndarray | None]:
    """
    Luminance in [0, 1] and alpha in [0, 1] (None when the image has no transparency), both (H, W).

    `source_mode` is the mode the file had before any shrinking (16-bit images are shrunk as 32-bit 'I').
    """
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        if not np.isfinite(arr).all():  # a float TIFF with NaN or inf (counted in the shrunk copy: not told)
            raise DigitImageError(not_numbers())
        if source_mode.startswith("I;16"):
            top = 65535.0
        elif arr.max(initial=0.0) <= 1.0 and mode == "F":
            top = 1.0
        elif arr.max(initial=0.0) <= 255:
            top = 255.0
        else:
            top = 65535.0 if arr.max() <= 65535 else float(arr.max())
        return np.clip(arr / top, 0.0, 1.0), None
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64) / 255.0
        gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114])
        return gray, rgba[..., 3]
    return np.asarray(image.convert("L"), dtype=np.float64) / 255.0, None


def _border_median(values: np.ndarray) -> float:
    border = np.concatenate([values[0], values[-1], values[:, 0], values[:, -1]])
    return float(np.median(border))


def image_to_ink(image: Image.Image) -> np.ndarray:
    """
    The ink of an image as (H, W) float64 in [0, 1], 0 = paper, MNIST's polarity (white digit on black).

    - Real transparency (some pixels not opaque): the ink is the alpha channel — a stroke on a transparent canvas,
      whatever its colour.
    - An image of at most 28×28 (MNIST-formatted): the luminance, inverted when the background (median of the border
      pixels) is light, with that background level subtracted.
    - Anything larger, a photo or scan: `photo_ink`, which estimates the paper locally, so uneven light, shadows,
      coloured or lined paper and noise do not count as ink.

    Raises:
        DigitImageError: the image is one flat colour, or holds no ink.
    """
    source_mode = image.mode
    image = _upright(_shrink(image), _orientation(image))
    gray, alpha = _gray_and_alpha(image, source_mode)
    if alpha is not None and alpha.min() < 0.99:
        if alpha.max() < INK_THRESHOLD:
            raise DigitImageError("The image is fully transparent: there is nothing drawn. Draw or upload a digit.")
        ink = alpha
    else:
        if gray.max() - gray.min() < 1e-3:
            shade = "white" if gray.mean() > 0.5 else "black"
            raise DigitImageError(
                f"The image is blank: every pixel is the same colour ({shade}). Draw or upload a digit "
                "(dark on light or light on dark)."
            )
        background = _border_median(gray)
        if background > 0.5:
            gray, background = 1.0 - gray, 1.0 - background
        if max(gray.shape) <= MNIST_SIZE:
            ink = np.clip((gray - background) / max(1.0 - background, 1e-6), 0.0, 1.0)
        else:
            ink = photo_ink(gray)
    if ink.max() < INK_THRESHOLD:
        raise DigitImageError(
            "No digit found: the image has too little contrast with its background. Draw or upload a clearer digit."
        )
    return ink


# Photo clean-up: the paper is estimated on a small copy (long side `BACKGROUND_SIZE`), by a grey opening a quarter of
# the image wide (wider than any pen stroke, even where the strokes of a bold digit that fills the image meet),
# smoothed.
BACKGROUND_SIZE = 128
# Strokes (connected ink above the adaptive threshold) smaller than this share of the largest are specks or noise.
MIN_STROKE_SHARE = 0.1


def photo_ink(gray: np.ndarray) -> np.ndarray:
    """
    The ink of a photo or scan of a digit, bright ink on dark paper already: (H, W) in [0, 1] → (H, W) in [0, 1].

    1. the paper's brightness, estimated locally (grey opening of a small copy, smoothed, scaled back up), is
       subtracted, so a lighting gradient, a shadow or tinted paper become 0;
    2. what is left is scaled by its 99.9th percentile and cut at an adaptive (Otsu) threshold, which removes sensor
       noise and faint printed lines;
    3. only the largest strokes are kept: connected pieces at least `MIN_STROKE_SHARE` of the largest, none that is a
       thin line across the whole page (ruled paper).
    """
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    h, w = gray.shape
    factor = max(h, w) / BACKGROUND_SIZE
    small_shape = (max(2, round(h / factor)), max(2, round(w / factor)))
    small = np.asarray(Image.fromarray(gray.astype(np.float32), mode="F").resize(small_shape[::-1], Image.BILINEAR))
    k = max(3, max(small_shape) // 4)
    paper = ndimage.gaussian_filter(ndimage.grey_opening(small, size=(k, k)), sigma=k / 4)
    paper = np.asarray(Image.fromarray(paper.astype(np.float32), mode="F").resize((w, h), Image.BILINEAR))
    diff = np.clip(gray - paper, 0.0, None)
    level = float(np.percentile(diff, 99.9))
    if level < 0.02:  # less than 2% contrast anywhere: no ink
        return np.zeros_like(gray)
    ink = np.clip(diff / level, 0.0, 1.0)
    try:
        t = float(threshold_otsu(ink))
    except ValueError:  # one value everywhere
        return np.zeros_like(gray)
    strokes, n = ndimage.label(ink > t)
    if n == 0:
        return np.zeros_like(gray)
    sizes = ndimage.sum_labels(np.ones_like(ink), strokes, index=np.arange(1, n + 1))
    boxes = ndimage.find_objects(strokes)
    keep = np.zeros(n + 1, dtype=bool)
    for i, (size, box) in enumerate(zip(sizes, boxes), start=1):
        bh, bw = box[0].stop - box[0].start, box[1].stop - box[1].start
        ruled = (bw > 0.8 * w and bh < 0.05 * h) or (bh > 0.8 * h and bw < 0.05 * w)
        keep[i] = size >= MIN_STROKE_SHARE * sizes.max() and not ruled
    if not keep.any():  # only lines: keep the largest piece
        keep[1 + int(np.argmax(sizes))] = True
    mask = ndimage.binary_dilation(keep[strokes], iterations=2)  # the strokes' anti-aliased edges too
    return np.where(mask, ink, 0.0)


def sketch_to_image(value) -> Image.Image:
    """
    The drawing in a `gr.Sketchpad` / `gr.ImageEditor` value, as one image.

    The composite (the canvas as drawn, which a Sketchpad always sends) is all that is read when there is one: the
    background and the layers, already in it, cost nothing. Without one, the background and the layers are
    composited here: their headers are checked first against one budget (`MAX_PIXELS` in all, at most
    `MAX_LAYERS` layers), then each is decoded, shrunk to the working size and merged in turn, so one full-size
    layer is in memory at a time.

    Args:
        value: an EditorValue dict (`{"background", "layers", "composite"}`, each an array, PIL image, file path or
            bytes), or directly an image in any form `open_image` takes.

    Raises:
        DigitImageError: an empty canvas, an unreadable value, or a drawing over the budget.
    """
    if not isinstance(value, dict):
        image = open_image(value)
    elif value.get("composite") is not None:
        image = open_image(value["composite"])
    else:
        layers = [layer for layer in (value.get("layers") or []) if layer is not None]
        if len(layers) > MAX_LAYERS:
            raise DigitImageError(
                f"The drawing has {len(layers)} layers; the limit is {MAX_LAYERS}. Merge them, or send the "
                "drawing's composite."
            )
        background = value.get("background")
        parts = [open_image(part, decode=False) for part in ([background] if background is not None else []) + layers]
        if not parts:
            raise DigitImageError("The canvas is empty. Draw a digit with the mouse (or a finger) first.")
        pixels = sum(part.size[0] * part.size[1] for part in parts)
        if pixels > MAX_PIXELS:
            raise DigitImageError(too_large(pixels, what=f"The drawing ({len(parts)} images together)"))
        image = _shrink(_decode(parts[0])).convert("RGBA")
        for part in parts[1:]:
            layer = _shrink(_decode(part)).convert("RGBA")
            image = Image.alpha_composite(image, layer.resize(image.size))
            part.close()
    if image.mode in ("RGBA", "LA") and np.asarray(image.getchannel("A")).max() == 0:
        raise DigitImageError("The canvas is empty. Draw a digit with the mouse (or a finger) first.")
    return image


def center_digit(ink: np.ndarray, box: int = DIGIT_BOX, size: int = MNIST_SIZE) -> np.ndarray:
    """
    MNIST's normalisation of an ink map: crop to the bounding box, scale to fit `box`×`box` (aspect kept,
    anti-aliased), and centre by centre of mass in `size`×`size`.

    Args:
        ink: (H, W) in [0, 1], ink high.

    Returns:
        (size, size) float32 in [0, 1] with maximum 1.
    """
    rows, cols = np.nonzero(ink > INK_THRESHOLD * ink.max())
    if rows.size == 0:
        raise DigitImageError("No digit found in the image. Draw or upload a digit.")
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]  # (h, w)
    h, w = crop.shape
    scale = box / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = Image.fromarray((crop / crop.max()).astype(np.float32), mode="F").resize(
        (new_w, new_h), Image.Resampling.LANCZOS
    )
    digit = np.clip(np.asarray(resized, dtype=np.float64), 0.0, 1.0)  # (new_h, new_w)
    digit /= max(digit.max(), 1e-12)
    total = digit.sum()
    yy, xx = np.mgrid[:new_h, :new_w]
    cy, cx = (yy * digit).sum() / total, (xx * digit).sum() / total
    centre = size / 2  # 14: where MNIST's centres of mass lie in pixel-index coordinates (measured: 14.0 ± 0.3)
    top = int(np.clip(round(centre - cy), 0, size - new_h))
    left = int(np.clip(round(centre - cx), 0, size - new_w))
    out = np.zeros((size, size), dtype=np.float32)
    out[top : top + new_h, left : left + new_w] = digit
    return out


def preprocess_digit(source, size: int = MNIST_SIZE) -> np.ndarray:
    """
    Any image of a digit → a (size, size) float32 array in [0, 1], MNIST-style (see the module docstring).

    An image that is already `size`×`size` is taken to be MNIST-formatted: it is converted to ink (grayscale,
    inverted if its background is light) but not cropped or rescaled, so test-set digits reach the models unchanged.

    Args:
        source: an image in any form `open_image` takes, or a `gr.Sketchpad` EditorValue dict.

    Raises:
        DigitImageError: with a message for the user (empty canvas, blank image, not an image, corrupt, too large).
    """
    image = sketch_to_image(source) if isinstance(source, dict) else open_image(source)
    ink = image_to_ink(image)
    if ink.shape == (size, size):
        return ink.astype(np.float32)
    return center_digit(ink, size=size)
