import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from mae_hf.digits import DigitImageError, center_digit, open_image, preprocess_digit, sketch_to_image


def _bar(height=100, width=200, polarity="white-on-black"):
    """A 60×30 ink bar at an off-centre spot: after preprocessing, 20 px tall, 10 px wide, centred."""
    arr = np.zeros((height, width), np.uint8)
    arr[10:70, 20:50] = 255
    return arr if polarity == "white-on-black" else 255 - arr


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _centre_of_mass(img):
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    return (yy * img).sum() / img.sum(), (xx * img).sum() / img.sum()


def test_bar_is_cropped_scaled_to_20_and_centred_by_mass():
    out = preprocess_digit(Image.fromarray(_bar()))
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.max() == pytest.approx(1.0) and out.min() >= 0.0
    rows, cols = np.nonzero(out > 0.5)
    assert rows.max() - rows.min() + 1 == 20  # long side fits the 20×20 box
    assert cols.max() - cols.min() + 1 == 10  # aspect ratio kept (60×30 → 20×10)
    cy, cx = _centre_of_mass(out)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5  # MNIST's convention


def test_light_background_is_inverted_to_mnist_polarity():
    white_on_black = preprocess_digit(Image.fromarray(_bar()))
    black_on_white = preprocess_digit(Image.fromarray(_bar(polarity="black-on-white")))
    np.testing.assert_allclose(black_on_white, white_on_black, atol=1e-6)


def test_grey_paper_is_removed():
    arr = np.full((100, 200), 200, np.uint8)  # light grey paper, dark grey ink
    arr[10:70, 20:50] = 60
    out = preprocess_digit(Image.fromarray(arr))
    np.testing.assert_allclose(out, preprocess_digit(Image.fromarray(_bar())), atol=1e-6)


def test_alpha_ink_on_transparent_canvas_as_the_sketchpad_gives_it():
    rgba = np.zeros((100, 200, 4), np.uint8)  # black ink, transparent paper: only alpha carries the digit
    rgba[10:70, 20:50, 3] = 255
    expected = center_digit(rgba[..., 3] / 255.0)  # the alpha channel is the ink, as it always was
    np.testing.assert_allclose(preprocess_digit(Image.fromarray(rgba)), expected, atol=1e-6)
    editor_value = {"background": None, "layers": [rgba], "composite": rgba}
    np.testing.assert_allclose(preprocess_digit(editor_value), expected, atol=1e-6)
    layers_only = {"background": None, "layers": [Image.fromarray(rgba)], "composite": None}
    np.testing.assert_allclose(preprocess_digit(layers_only), expected, atol=1e-6)


def test_opaque_white_canvas_with_black_strokes():
    rgba = np.full((100, 200, 4), 255, np.uint8)
    rgba[10:70, 20:50, :3] = 0
    np.testing.assert_allclose(
        preprocess_digit(Image.fromarray(rgba)), preprocess_digit(Image.fromarray(_bar())), atol=1e-6
    )


@pytest.mark.parametrize("mode", ["I;16", "P", "1", "RGB", "CMYK", "LA", "F"])
def test_every_mode_gives_the_same_digit(mode):
    base = Image.fromarray(_bar())
    if mode == "I;16":
        image = Image.fromarray(_bar().astype(np.uint16) * 257)  # 16-bit, full range
        assert image.mode == "I;16"
    elif mode == "F":
        image = Image.fromarray(_bar().astype(np.float32) / 255.0, mode="F")
    else:
        image = base.convert(mode)
    decoded = open_image(_png_bytes(image)) if mode not in ("CMYK", "F") else image
    np.testing.assert_allclose(preprocess_digit(decoded), preprocess_digit(base), atol=1e-6)


def test_mnist_28x28_passes_through_unchanged(mnist):
    image = mnist["test"][0]["image"]
    out = preprocess_digit(image)
    np.testing.assert_array_equal(out, np.asarray(image, np.float32) / 255.0)


def test_enlarged_mnist_digits_come_back_as_themselves(mnist):
    """Undoing a 10× enlargement reproduces MNIST's own crop, scale and centring (measured: ~0.01 mean error)."""
    for i in range(20):
        image = mnist["test"][i]["image"]
        original = np.asarray(image, np.float32) / 255.0
        out = preprocess_digit(image.resize((280, 280), Image.Resampling.NEAREST))
        assert np.abs(out - original).mean() < 0.03, i
        assert np.allclose(_centre_of_mass(out), _centre_of_mass(original), atol=0.5), i


def test_large_photo_is_downscaled_quickly():
    arr = np.full((2400, 3600), 235, np.uint8)
    arr[300:2100, 1500:2100] = 20  # a tall dark stroke on light paper
    start = time.perf_counter()
    out = preprocess_digit(_png_bytes(Image.fromarray(arr)))
    assert time.perf_counter() - start < 5
    rows, cols = np.nonzero(out > 0.5)
    assert rows.max() - rows.min() + 1 == 20 and 5 <= cols.max() - cols.min() + 1 <= 8


def huge_png_header(width=10_000, height=10_000) -> bytes:
    """A PNG whose header claims width × height pixels (with a tiny, unusable body): tests the size check only."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


def test_huge_image_is_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(huge_png_header())
    start = time.perf_counter()
    with pytest.raises(DigitImageError, match=r"too large: 10000×10000 = 100 megapixels"):
        preprocess_digit(str(path))
    assert time.perf_counter() - start < 1


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Image.new("L", (1, 1), 0), "blank"),
        (lambda: Image.new("L", (64, 64), 255), r"blank: every pixel is the same colour \(white\)"),
        (lambda: Image.new("RGB", (64, 64), (0, 0, 0)), r"blank: every pixel is the same colour \(black\)"),
        (lambda: Image.new("RGBA", (64, 64), (0, 0, 0, 0)), "fully transparent"),
        (lambda: {"background": None, "layers": [], "composite": None}, "canvas is empty"),
        (lambda: {"background": None, "layers": [], "composite": np.zeros((50, 50, 4), np.uint8)}, "canvas is empty"),
        (lambda: None, "No image was given"),
        (lambda: b"this is a text file, not a picture", "is not an image"),
        (lambda: _png_bytes(Image.fromarray(_bar()))[:120], "corrupt or truncated"),
        (lambda: np.zeros((4, 4, 7)), r"\(H, W\), \(H, W, 3\)"),
        (lambda: 42, "Cannot read an image from a int"),
    ],
    ids=[
        "1x1",
        "all-white",
        "all-black",
        "transparent",
        "no-layers",
        "empty-canvas",
        "none",
        "text",
        "truncated",
        "bad-array",
        "int",
    ],
)
def test_bad_inputs_raise_a_clear_message(make, message):
    with pytest.raises(DigitImageError, match=message):
        preprocess_digit(make())


def test_float_images_with_nan_or_inf_are_refused():
    for bad in (np.nan, np.inf):
        arr = np.zeros((28, 28), np.float32)
        arr[3, 4] = bad
        with pytest.raises(DigitImageError, match="not numbers"):
            preprocess_digit(arr)


def test_float_tiffs_with_nan_or_inf_get_the_nan_message_not_too_little_contrast():
    for bad in (np.nan, np.inf, -np.inf):
        arr = np.zeros((60, 80), np.float32)
        arr[10:40, 20:30] = 1.0
        arr[5, 5] = bad
        buf = io.BytesIO()
        Image.fromarray(arr, mode="F").save(buf, format="TIFF")
        with pytest.raises(DigitImageError, match="not numbers"):
            preprocess_digit(buf.getvalue())


def test_one_request_decodes_at_most_its_budget_checked_from_the_headers(tmp_path):
    """A drawing's images count together against `MAX_PIXELS` (24 layers of 39.7 megapixels each once took 9.7 GB),
    the layers are limited, a needle-thin strip is refused, and an image over PIL's own bomb limit gets our
    message. Every image here is a header with an unusable body: a refusal about its size, not its corruption,
    shows it was refused before decoding."""
    from mae_hf.digits import MAX_LAYERS

    layer = tmp_path / "layer.png"
    layer.write_bytes(huge_png_header(6300, 6300))  # 39.7 MP: under the limit alone
    with pytest.raises(DigitImageError, match=r"drawing \(3 images together\) is too large: 119 megapixels"):
        preprocess_digit({"background": str(layer), "layers": [str(layer)] * 2, "composite": None})
    with pytest.raises(DigitImageError, match=f"24 layers; the limit is {MAX_LAYERS}"):
        preprocess_digit({"background": None, "layers": [str(layer)] * 24, "composite": None})
    strip = tmp_path / "strip.png"
    strip.write_bytes(huge_png_header(39_000_000, 1))
    with pytest.raises(DigitImageError, match="more than 20 times longer than it is wide"):
        preprocess_digit(str(strip))
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(huge_png_header(20_000, 20_000))  # 400 MP: over PIL's own limit (2 × 89.5 MP)
    with pytest.raises(DigitImageError, match="limit is 40 megapixels") as err:
        preprocess_digit(str(bomb))
    assert "decompression bomb" not in str(err.value).lower() and "exceeds limit" not in str(err.value)


def test_a_drawings_layers_are_not_read_when_it_has_a_composite(tmp_path):
    """The composite is the canvas as drawn: the background and layers beside it (here unreadable files) cost
    nothing."""
    rgba = np.zeros((100, 200, 4), np.uint8)
    rgba[10:70, 20:50, 3] = 255
    junk = tmp_path / "junk.png"
    junk.write_bytes(huge_png_header(6300, 6300))
    value = {"background": str(junk), "layers": [str(junk)] * 24, "composite": _png_bytes(Image.fromarray(rgba))}
    np.testing.assert_allclose(preprocess_digit(value), preprocess_digit(Image.fromarray(rgba)), atol=1e-6)


def test_missing_file_and_non_image_file(tmp_path):
    with pytest.raises(DigitImageError, match="'nope.png' could not be decoded") as err:
        open_image(tmp_path / "nope.png")
    assert str(tmp_path) not in str(err.value)  # no server path in a message
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(DigitImageError, match="'notes.png' is not an image"):
        open_image(text)


def test_sketch_to_image_composites_layers_over_background():
    background = np.full((40, 40, 4), 255, np.uint8)  # opaque white
    stroke = np.zeros((40, 40, 4), np.uint8)
    stroke[5:35, 18:22] = (0, 0, 0, 255)
    image = sketch_to_image({"background": background, "layers": [stroke], "composite": None})
    arr = np.asarray(image)
    assert arr[20, 20, 0] == 0 and arr[2, 2, 0] == 255


@pytest.mark.slow
def test_photos_of_digits_are_recognised_almost_as_well_as_the_digits(mnist):
    """MNIST test digits as dark pen ink on unevenly lit, shadowed, noisy, blurred, tinted or ruled paper, at several
    sizes and positions: the digits made from them are recognised by a raw-pixel 5-NN almost as well as the clean
    ones (one global background level counted the darker half of a lit page as ink: 0.1-0.26 here)."""
    from mae_hf import dataset_to_tensors
    from mae_hf.analysis.clustering import knn_accuracy

    from .photos import CONDITIONS, photo_of

    train_x, train_y = dataset_to_tensors(mnist["train"])
    x, y = dataset_to_tensors(mnist["test"], n=150)
    fit = train_x.flatten(1).numpy(), train_y.numpy()
    clean = knn_accuracy(*fit, x.flatten(1).numpy(), y.numpy())
    rng = np.random.default_rng(0)
    for condition in CONDITIONS:
        digits = np.stack(
            [
                preprocess_digit(photo_of((x[i, 0].numpy() * 255).astype(np.uint8), condition, rng))
                for i in range(len(x))
            ]
        )
        accuracy = knn_accuracy(*fit, digits.reshape(len(x), -1), y.numpy())
        assert accuracy >= clean - 0.06, (condition, accuracy, clean)


def test_mnist_formatted_uploads_are_untouched(mnist):
    """28×28 uploads take the MNIST path: the digit comes back exactly."""
    image = mnist["test"][0]["image"]
    np.testing.assert_array_equal(preprocess_digit(image), np.asarray(image, np.float32) / 255.0)
