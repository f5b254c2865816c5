"""AppTest helpers of the reliability tests (not a test module)."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from mnist_core.synthetic import render_digit

CANVAS_KEY = "draw_canvas_0"


def canvas_png(label: int = 3, seed: int = 0) -> bytes:
    """A digit as the canvas sends it: 280x280 RGBA, black stroke in the alpha channel."""
    glyph = render_digit(label, np.random.default_rng(seed))
    big = np.asarray(Image.fromarray(glyph).resize((280, 280), Image.Resampling.BILINEAR))
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = np.where(big > 60, big, 0)
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, "PNG")
    return buffer.getvalue()


def inject(at: AppTest, data: bytes, key: str = CANVAS_KEY) -> AppTest:
    """What the canvas component reports after a stroke (see STACK.md)."""
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    at.session_state[key] = {"drawing": {"raw": {"objects": [{}]}, "data": url}}
    return at.run()


def open_page(app_path: object, page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(app_path), default_timeout=60)
    if page is not None:
        at.switch_page(page)
    return at.run()


def texts(at: AppTest) -> str:
    kinds = ("markdown", "info", "success", "warning", "error", "caption", "subheader")
    return "\n".join(str(el.value) for kind in kinds for el in at.get(kind))


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def run_until(at: AppTest, done: Callable[[AppTest], bool], timeout_s: float = 90) -> AppTest:
    """Rerun (each rerun runs a live fragment once) until ``done(at)``; fails on timeout."""
    deadline = time.monotonic() + timeout_s
    while not done(at):
        assert time.monotonic() < deadline, texts(at)
        no_exception(at)
        time.sleep(0.25)
        at.run()
    return at
