"""Telling other image formats by their first bytes, so that a refused upload says what it is."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from mnist_core import images
from mnist_core.errors import InvalidImageError
from mnist_core.imagecheck import other_format


def _saved(kind: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (255, 255, 255)).save(buf, kind)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("kind", "name"),
    [("GIF", "GIF"), ("WEBP", "WebP"), ("BMP", "BMP"), ("TIFF", "TIFF"), ("ICO", "ICO"), ("PNG", None),
     ("JPEG", None)],
)  # fmt: skip
def test_files_saved_by_pil_are_named_by_their_format(kind: str, name: str | None) -> None:
    assert other_format(_saved(kind)) == name


def test_iso_media_photos_are_named_by_their_brand_and_the_unknown_is_not_named() -> None:
    box = b"\x00\x00\x00\x18ftyp"
    assert other_format(box + b"heic\x00\x00\x00\x00") == "HEIC"
    assert other_format(box + b"avif\x00\x00\x00\x00") == "AVIF"
    assert other_format(box + b"isom\x00\x00\x00\x00") is None  # an MP4 video: not an image
    assert other_format(b"hello, I am not an image") is None
    assert other_format(b"") is None


def test_a_refused_format_is_named_in_the_message_and_read_formats_are_accepted_by_the_form() -> None:
    with pytest.raises(InvalidImageError, match=r"is a WebP image: only PNG and JPEG are read"):
        images.decode(_saved("WEBP"))
    assert {"png", "jpg", "jpeg"} <= set(images.UPLOAD_EXTENSIONS)
    assert "heic" not in images.UPLOAD_EXTENSIONS  # a phone converts HEIC to JPEG for a form without it
