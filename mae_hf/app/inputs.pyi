"""The app's input components: a digit picture and a drawing, which reach the handlers only as files a visitor
uploaded (or the app itself wrote), checked before anything is decoded.

A stock `gr.Image(type="filepath")` or `gr.Sketchpad` opens any local path a caller sends in the payload (`{"path":
"/some/file.png"}`, with or without `meta`). These components refuse every path outside gradio's upload and cache
folder with the message a corrupt upload gets (so a message never tells whether a file exists), and hand the
handler the path or the bytes unopened: `mae_hf.digits` checks the size from the header before decoding.
"""

import logging
import os
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

from ..digits import unreadable

logger = logging.getLogger(__name__)

__all__ = ["allowed_upload", "UploadRefused", "DigitImage", "DigitSketchpad"]

class UploadRefused(gr.Error):
    """A file the app will not open; shown to the visitor, one log line, no traceback."""

    def __init__(self, message: str):
        super().__init__(message, title="Cannot use this image", print_exception=False)

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
        logger.warning("Refused a request for a file outside the upload folder")
        raise UploadRefused(unreadable())
    return str(resolved)

class DigitImage(gr.Image):
    """A `gr.Image` whose upload reaches the handler as a checked path, unopened (see the module docstring)."""

    is_template = True  # rendered by the frontend's Image component

    def preprocess(self, payload):
        if payload is None:
            return None
        return allowed_upload(payload.path)
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component

class DigitSketchpad(gr.Sketchpad):
    """
    A `gr.Sketchpad` whose value reaches the handler as `{"background", "layers", "composite"}` of checked paths (or
    the canvas's bytes), undecoded: gradio's own preprocessing decodes and converts every image first, whatever its
    size.
    """

    is_template = True

    def get_block_name(self) -> str:
        return "imageeditor"

    def get_block_class(self) -> str:
        return "imageeditor"

    def preprocess(self, payload):
        if payload is None:
            return None
        parts = payload
        if payload.id is not None:  # large canvases are sent ahead to blob storage
            cached = self.blob_storage.pop(payload.id, None)
            if cached is None:
                raise UploadRefused("The drawing did not arrive. Draw again.")
            parts = cached

        def one(part):
            if part is None:
                return None
            if isinstance(part, (bytes, bytearray, memoryview)):
                return bytes(part)
            return allowed_upload(part.path)

        return {
            "background": one(parts.background),
            "layers": [one(p) for p in (parts.layers or []) if p],
            "composite": one(parts.composite),
        }
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component
