"""A digit as the Draw page's canvas reports it, and injecting it into an AppTest."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.support.synthetic import render_digit

CANVAS_KEY = "draw_canvas_0"  # the Draw page's first canvas


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def canvas_png(label: int = 3, seed: int = 0) -> bytes:
    """A digit as the canvas sends it: 280x280 RGBA, black stroke in the alpha channel."""
    glyph = render_digit(label, np.random.default_rng(seed))
    big = np.asarray(Image.fromarray(glyph).resize((280, 280), Image.Resampling.BILINEAR))
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = np.where(big > 60, big, 0)
    return png(rgba)


def inject(at: AppTest, data: bytes, key: str = CANVAS_KEY) -> AppTest:
    """Put ``data`` (PNG bytes) where the canvas component reports a drawing, and run the script."""
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    at.session_state[key] = {"drawing": {"raw": {"objects": [{}]}, "data": url}}
    return at.run()


def upload(at: AppTest, name: str, data: bytes, mime: str = "image/png") -> AppTest:
    """Switch the Draw page to Upload, give it ``data`` as the file ``name``, and run the script."""
    at.button_group(key="draw_source").set_value("Upload")
    at.run()
    at.file_uploader(key="draw_upload").set_value((name, data, mime))
    return at.run()
