"""The app's input components: every value a caller sends is checked by the component before the handler runs, and
every refusal is a short message (`gr.Error`) naming the input, what it takes and what it got (cut to a few dozen
characters), with one log line.

- Pictures (`DigitImage`, `DigitSketchpad`) reach the handlers only as files a visitor uploaded (or the app itself
  wrote), unopened. A stock `gr.Image(type="filepath")` or `gr.Sketchpad` opens any local path a caller sends in
  the payload (`{"path": "/some/file.png"}`); these refuse every path outside gradio's upload and cache folder with
  the message a corrupt upload gets (so a message never tells whether a file exists), and `mae_hf.digits` checks
  the size from the header before decoding. They check the payload's shape themselves (no gradio data model), so
  an image sent as a number or a bare string gets a message, not a validation error the caller never sees.
- Settings (`CheckedSlider`, `CheckedNumber`, `CheckedRadio`, `CheckedDropdown`) run gradio's own checks and turn
  any refusal (a string for a number, a value out of range, a choice that is not offered) into such a message.

Two refusals happen inside gradio before any component code, so they cannot be given a message here: a payload
whose `meta` marks a file outside the upload folder (`gradio.processing_utils.async_move_files_to_cache`) and a
request with too few inputs (`gradio.blocks.Blocks.validate_inputs`); docs/app.md says so.
"""

import logging
import os
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

from ..digits import unreadable

logger = logging.getLogger(__name__)

__all__ = [
    "shorten",
    "allowed_upload",
    "UploadRefused",
    "SettingRefused",
    "DigitImage",
    "DigitSketchpad",
    "CheckedSlider",
    "CheckedNumber",
    "CheckedRadio",
    "CheckedDropdown",
]

SHOWN_CHARACTERS = 60


def shorten(value, limit: int = SHOWN_CHARACTERS) -> str:
    """`repr(value)`, cut to `limit` characters (with the full length said) so no message or log line echoes a huge
    value."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


class UploadRefused(gr.Error):
    """A file the app will not open: `message` for the caller; one log line (with `reason`, for the server's eyes
    only), no traceback."""

    def __init__(self, message: str, reason: str | None = None):
        logger.info("Request refused (Cannot use this image%s): %s", f"; {reason}" if reason else "", message)
        super().__init__(message, title="Cannot use this image", print_exception=False)


class SettingRefused(gr.Error):
    """A setting the app cannot use; shown to the caller, one log line, no traceback."""

    def __init__(self, message: str):
        logger.info("Request refused (Invalid setting): %s", message)
        super().__init__(message, title="Invalid setting", print_exception=False)


def allowed_upload(path: str | os.PathLike | None) -> str:
    """
    `path` resolved, if it lies inside gradio's upload and cache folder (`GRADIO_TEMP_DIR`, default
    `<tmp>/gradio`), where uploads, drawings and the example files the app serves are; else `UploadRefused`.
    """
    if not path:
        raise UploadRefused(unreadable())
    resolved = Path(os.path.realpath(path))
    root = Path(os.path.realpath(get_upload_folder()))
    if not resolved.is_relative_to(root) or not resolved.is_file():
        raise UploadRefused(unreadable(), reason="not a file in the upload folder")
    return str(resolved)


def _uploaded_path(value, what: str) -> str:
    """The path of a file payload (`{"path": ..., ...}`, as the page and gradio_client's `handle_file` send it),
    checked by `allowed_upload`; anything else is refused, naming what was expected."""
    if isinstance(value, dict) and isinstance(value.get("path"), str):
        return allowed_upload(value["path"])
    raise UploadRefused(
        f"{what} must be an uploaded file, sent as {{'path': ...}} (gradio_client: `handle_file(path)`); got "
        f"{shorten(value)}."
    )


class DigitImage(gr.Image):
    """A `gr.Image` whose upload reaches the handler as a checked path, unopened (see the module docstring)."""

    is_template = True  # rendered by the frontend's Image component
    data_model = None  # the payload is checked in `preprocess`, with a message for every refusal

    def api_info(self) -> dict:
        return gr.Image.data_model.model_json_schema()  # what callers send: an image file

    def preprocess(self, payload):
        if payload is None:
            return None
        return _uploaded_path(payload, "The image")


class DigitSketchpad(gr.Sketchpad):
    """
    A `gr.Sketchpad` whose value reaches the handler as `{"background", "layers", "composite"}` of checked paths (or
    the canvas's bytes), undecoded: gradio's own preprocessing decodes and converts every image first, whatever its
    size.
    """

    is_template = True
    data_model = None  # checked in `preprocess`

    def get_block_name(self) -> str:
        return "imageeditor"

    def get_block_class(self) -> str:
        return "imageeditor"

    def api_info(self) -> dict:
        return gr.ImageEditor.data_model.model_json_schema()

    def preprocess(self, payload):
        if payload is None:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("layers") or [], list):
            raise UploadRefused(
                "A drawing must be {'background': file or None, 'layers': [files], 'composite': file or None}; got "
                f"{shorten(payload)}."
            )
        parts = payload
        if payload.get("id") is not None:  # large canvases are sent ahead to blob storage
            cached = self.blob_storage.pop(str(payload["id"]), None)
            if cached is None:
                raise UploadRefused("The drawing did not arrive. Draw again.")
            parts = {"background": cached.background, "layers": cached.layers, "composite": cached.composite}

        def one(part, what):
            if part is None:
                return None
            if isinstance(part, (bytes, bytearray, memoryview)):
                return bytes(part)
            return _uploaded_path(part, what)

        return {
            "background": one(parts.get("background"), "The drawing's background"),
            "layers": [one(p, "A layer of the drawing") for p in (parts.get("layers") or []) if p],
            "composite": one(parts.get("composite"), "The drawing's composite"),
        }


class _Checked:
    """Mixin for a setting: gradio's own `preprocess`, with any refusal of it a `SettingRefused` that names the
    setting, what it takes (`takes()`) and the value it got (shortened)."""

    is_template = True

    def _gradio_class(self) -> type:
        return next(c for c in type(self).__mro__ if c.__module__.startswith("gradio.components"))

    def get_block_name(self) -> str:
        return self._gradio_class().__name__.lower()

    def get_block_class(self) -> str:
        return self.get_block_name()

    def takes(self) -> str:
        raise NotImplementedError

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except Exception:  # noqa: BLE001 - gradio's own refusal (TypeError, ValueError or gr.Error), said shorter
            message = f"{self.label or 'This setting'} takes {self.takes()}; got {shorten(payload)}."
        raise SettingRefused(message)


class CheckedSlider(_Checked, gr.Slider):
    def takes(self) -> str:
        return f"a number from {self.minimum:g} to {self.maximum:g}"

    def preprocess(self, payload):
        if isinstance(payload, bool) or not isinstance(payload, (int, float)):  # gradio compares it to the bounds
            raise SettingRefused(f"{self.label} takes {self.takes()}; got {shorten(payload)}.")
        return super().preprocess(payload)


class CheckedNumber(_Checked, gr.Number):
    def takes(self) -> str:
        kind = "a whole number" if self.precision == 0 else "a number"
        return kind + ("" if self.minimum is None else f" from {self.minimum:g}")

    def preprocess(self, payload):
        if payload is not None and (isinstance(payload, bool) or not isinstance(payload, (int, float))):
            raise SettingRefused(f"{self.label} takes {self.takes()}; got {shorten(payload)}.")
        return super().preprocess(payload)


class CheckedRadio(_Checked, gr.Radio):
    def takes(self) -> str:
        return "one of " + ", ".join(repr(value) for _, value in self.choices)


class CheckedDropdown(_Checked, gr.Dropdown):
    def takes(self) -> str:
        return "one of " + ", ".join(repr(value) for _, value in self.choices)
