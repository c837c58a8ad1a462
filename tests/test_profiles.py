"""Datasets as profiles (mae_hf/profiles.py): which profile a dataset or a model folder belongs to, how each prepares
a picture, and a profile registered from a test file alone reaching the app."""

import numpy as np
import pytest
from PIL import Image

from mae_hf.digits import DigitImageError
from mae_hf.profiles import (
    PROFILES,
    DatasetProfile,
    prepare_item,
    prepare_rgb,
    profile_for,
    profile_of_config,
    profile_of_dataset,
    register_profile,
)

DIGITS = [str(i) for i in range(10)]


@pytest.mark.parametrize(
    "source, names, channels, expected",
    [
        ("mnist", DIGITS, 1, "digits"),
        ("ylecun/mnist", DIGITS, 1, "digits"),
        ("zalando-datasets/fashion_mnist", DIGITS, 1, "clothing"),  # a Fashion-MNIST IDX folder: labels 0..9
        ("/data/shop", list(PROFILES["clothing"].class_names), 1, "clothing"),  # Fashion-MNIST's class names
        ("uoft-cs/cifar10", ["airplane", "automobile"], 3, "rgb"),
        ("/data/letters", ["a", "b"], 1, None),  # nothing says: the run names no profile
        ("mnist", DIGITS, 3, "rgb"),  # channels first: an RGB "mnist" is not the digits profile
    ],
)
def test_a_dataset_names_its_profile_by_source_then_class_names_then_channels(source, names, channels, expected):
    assert profile_of_dataset(source, names, channels) == expected


def test_a_model_config_names_its_profile_or_falls_back_by_channels():
    assert profile_of_config({"dataset_profile": "clothing", "num_channels": 1}).name == "clothing"
    assert profile_of_config({"num_channels": 1}).name == "digits"  # the folders from before profiles
    assert profile_of_config({"num_channels": 3}).name == "rgb"
    with pytest.raises(ValueError, match="Unknown dataset profile 'comics'; the registered ones are digits"):
        profile_of_config({"dataset_profile": "comics"})


def test_registering_a_profile_twice_or_with_two_channels_is_refused():
    with pytest.raises(ValueError, match="registered already; pass replace=True"):
        register_profile(PROFILES["digits"])
    with pytest.raises(ValueError, match="1 or 3 channels, got 2"):
        register_profile(DatasetProfile("two", "two", "x", "xs", 2, prepare_rgb))


def _photo(background: int, item: int, size=(160, 120)) -> Image.Image:
    """A product photo: a trouser-like dark item, 80 px tall and 40 wide, on a plain background."""
    pixels = np.full((size[1], size[0]), background, np.uint8)
    pixels[20:100, 60:100] = item
    return Image.fromarray(pixels)


def test_a_clothing_photo_is_trimmed_scaled_centred_and_made_light_on_black():
    for background, item in ((250, 30), (20, 200)):  # a dark item on white, a light one on black
        x = prepare_item(_photo(background, item))
        assert x.shape == (1, 28, 28) and x.dtype == np.float32
        rows, cols = np.nonzero(x[0] > 0.5)
        assert (rows.min(), rows.max() + 1) == (0, 28)  # the longest side fills the height
        assert 12 <= cols.max() + 1 - cols.min() <= 16 and abs((cols.min() + cols.max()) / 2 - 13.5) <= 1  # centred
        assert x[0, 0, 0] == 0.0 and x[0, 14, 14] > 0.9  # light item on black


def test_a_fashion_mnist_sized_image_is_taken_as_formatted():
    item = np.zeros((28, 28), np.uint8)
    item[4:24, 9:19] = 180
    x = prepare_item(Image.fromarray(item))
    assert np.allclose(x[0], item / 255.0)
    negated = prepare_item(Image.fromarray(255 - item))  # the same item, dark on white
    assert np.allclose(negated[0], item / 255.0)


def test_a_blank_clothing_photo_names_the_fix():
    with pytest.raises(DigitImageError, match="blank.*Upload a photo of an item"):
        prepare_item(Image.new("L", (50, 50), 128))


def test_a_colour_picture_is_scaled_and_centre_cropped_and_a_drawing_put_on_white():
    pixels = np.zeros((90, 120, 3), np.uint8)
    pixels[:, :15] = (255, 0, 0)  # cropped away: the centre 90x90 of 120 starts at 15
    pixels[:, 15:] = (0, 0, 255)
    x = prepare_rgb(Image.fromarray(pixels), 32)
    assert x.shape == (3, 32, 32) and np.allclose(x[:, :, 1:], np.array([0, 0, 1.0])[:, None, None], atol=0.02)
    drawing = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    drawing.paste((0, 128, 0, 255), (16, 16, 48, 48))
    y = prepare_rgb(drawing, 32)
    assert np.allclose(y[:, 0, 0], 1.0) and np.allclose(y[:, 16, 16], [0, 128 / 255, 0], atol=0.01)


def test_a_profile_registered_from_a_test_reaches_the_app(tiny_dae):
    """A new grayscale dataset is a profile: its models' configs name it, and the app prepares pictures its way."""
    from mae_hf.app.service import ModelService
    from mae_hf.loading import LoadedModels

    def invert(picture, image_size, num_channels):
        gray = np.asarray(Image.open(picture).convert("L").resize((image_size, image_size)), np.float32) / 255
        return (1.0 - gray)[None]

    letters = DatasetProfile("letters_test", "letters", "letter", "letters", 1, invert, image_size=28)
    register_profile(letters)
    try:
        tiny_dae.config.dataset_profile = "letters_test"
        service = ModelService.loaded(LoadedModels({"dae": tiny_dae}, {"dae": "in memory"}), analysis=False)
        assert service.profile is letters
        shown = service.digit(_white_png())
        assert shown.shape[:2] == (28, 28) and shown.max() == 0  # white paper inverted: no ink
        outputs = service.reconstruct(_white_png(), 0.75, 0.5, 0, "own")
        assert "DAE" in outputs[-1]  # the letter, as the profile made it, through the model
    finally:
        del PROFILES["letters_test"]
        del tiny_dae.config.dataset_profile


def _white_png():
    import io

    buffer = io.BytesIO()
    Image.new("L", (40, 40), 255).save(buffer, format="PNG")
    buffer.seek(0)
    return buffer


def test_unknown_profiles_are_named():
    with pytest.raises(ValueError, match="Unknown dataset profile 'x'"):
        profile_for("x")
