"""Decoding of drawings, uploads and arrays, with bounded time and memory.

Every accepted input (numpy array, PIL image, PNG/JPEG bytes, a binary file
object, a path) becomes a gray plane and an optional alpha plane, float32 in
[0, 1], at most :data:`WORK_SIDE` pixels per side. Unreadable input raises
:class:`InvalidImageError` with a message a user can act on.

Only PNG and JPEG files of at most :data:`MAX_FILE_BYTES` are opened;
:mod:`mnist_core.imagecheck` first bounds what decoding one will cost from its
headers (:func:`check_layout`: sides, pixels, PNG chunks, JPEG markers and
scans), and here the memory the decoded image takes is bounded before any
pixel is decoded. The limits (``imagecheck.MAX_PIXELS`` and the rest) and
``check_layout`` are imported from there. The costliest accepted files
found decode in 1.2 s of CPU and +133 MiB at most (``scripts/decode_bounds.py``
measures them; the target is under 2 s and 256 MiB).
"""

from __future__ import annotations

import io
import math
import os
import struct
from typing import BinaryIO, TypeAlias

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import InvalidImageError
from .imagecheck import MAX_EXIF_BYTES, MAX_PIXELS, MAX_SIDE, check_layout, other_format, too_large

__all__ = [
    "MAX_DECODED_BYTES",
    "MAX_FILE_BYTES",
    "UPLOAD_EXTENSIONS",
    "WORK_SIDE",
    "ImageSource",
    "decode",
]

ImageSource: TypeAlias = (
    np.ndarray | Image.Image | bytes | bytearray | memoryview | BinaryIO | str | os.PathLike[str]
)

MAX_FILE_BYTES = 32 * 2**20  # a photo of a digit takes a few MB; larger files are not opened
# Peak memory of PIL's copies of one decoded file (its layout: 1 byte per pixel for gray, 4 for
# colour; plus a converted copy, and the premultiplied copy PIL makes to shrink an image with
# alpha; see _decoded_bytes). A PNG cannot be decoded at a lower resolution, so this, not the
# pixel count, bounds what a small file can cost: 128 MiB admits a 10000x10000 gray scan, a
# 5790x5790 colour one or a 4090x4090 one with transparency. JPEGs are decoded at up to 1/8
# scale first, so any JPEG under MAX_PIXELS fits (progressive ones: MAX_COEFFICIENT_BYTES).
MAX_DECODED_BYTES = 128 * 2**20
WORK_SIDE = 1024  # images are shrunk to at most this side before any float work
_FORMATS = ("PNG", "JPEG")
# What an upload form should let through: the files read, and the common image files refused with a
# message that names their format (a form that filters them out says why only on hover). No HEIC: a
# phone converts a HEIC photo to JPEG for a form that does not list it.
UPLOAD_EXTENSIONS = ("png", "jpg", "jpeg", "gif", "webp", "bmp", "tif", "tiff")
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as PIL's "L"
# EXIF orientation tag -> the transpose that makes the photo upright.
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


def decode(image: ImageSource) -> tuple[np.ndarray, np.ndarray | None]:
    """Any accepted input -> gray ``(H, W)`` and alpha ``(H, W)`` or None, float32 in [0, 1].

    Both sides are at most :data:`WORK_SIDE`: big images are shrunk while
    still 8-bit (JPEG even while decoding), so an 8000x8000 upload costs
    about one decode and no float copy of its full size.
    """
    if isinstance(image, np.ndarray):
        return _planes_from_array(image)
    if isinstance(image, Image.Image):
        return _planes_from_pil(image, draft=False)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _planes_from_pil(_open(bytes(image), "The file"), draft=True)
    if isinstance(image, (str, os.PathLike)):
        try:
            with open(image, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise InvalidImageError(f"Cannot read {os.fspath(image)!r}: {exc.strerror}.") from exc
        return _planes_from_pil(_open(data, f"{os.fspath(image)!r}"), draft=True)
    if hasattr(image, "read"):
        # getvalue() (BytesIO, UploadedFile) returns everything even after an earlier read.
        try:
            data = image.getvalue() if hasattr(image, "getvalue") else image.read()
        except (OSError, ValueError) as exc:  # closed or unreadable file
            raise InvalidImageError(f"Cannot read the uploaded file: {exc}.") from exc
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidImageError("The file object returned text; open the image in binary mode ('rb').")
        name = getattr(image, "name", None)  # an upload's file name, which the user knows it by
        what = repr(name) if isinstance(name, str) else "The file"
        return _planes_from_pil(_open(bytes(data), what), draft=True)
    raise InvalidImageError(
        f"Cannot read an image from a {type(image).__name__}: pass a numpy array, a PIL image, "
        "PNG/JPEG bytes or a binary file."
    )


def _open(data: bytes, what: str) -> Image.Image:
    """Bytes -> a lazily decoded PIL image, refusing non-images and decompression bombs."""
    if not data:
        raise InvalidImageError(f"{what} is empty (0 bytes): choose a PNG or JPEG image of a digit.")
    if len(data) > MAX_FILE_BYTES:
        raise InvalidImageError(
            f"{what} is too large ({len(data) / 2**20:.1f} MB): images of up to {MAX_FILE_BYTES >> 20} MB "
            "are read. Crop the photo around the digit, or shrink it, and try again."
        )
    check_layout(data)
    kind = other_format(data)
    if kind is not None:
        raise InvalidImageError(
            f"{what} is a {kind} image: only PNG and JPEG are read. Save the digit as .png or .jpg "
            "(an image viewer's Save as or Export does it, as does a screenshot) and try again."
        )
    try:
        im = Image.open(io.BytesIO(data), formats=_FORMATS)
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(too_large(None, None)) from exc
    except (UnidentifiedImageError, *_DECODE_ERRORS) as exc:
        raise InvalidImageError(
            f"{what} is not a PNG or JPEG image (or it is damaged): "
            "save the digit as .png or .jpg and try again."
        ) from exc
    return im


def _decoded_bytes(im: Image.Image) -> int:
    """The peak of what PIL allocates for ``im`` at its (drafted) size.

    The decoded image, its converted copy (see :func:`_convert_mode`; the
    decoded one is still referenced meanwhile) and, for an image with alpha
    that must shrink, the premultiplied copy ``reduce`` makes first.
    """
    target = _target_mode(im)
    per_pixel = _bytes_per_pixel(im.mode)
    if target != im.mode:
        per_pixel += _bytes_per_pixel(target)
    if target in ("LA", "RGBA") and max(im.size) > WORK_SIDE:
        per_pixel += 4
    width, height = im.size
    return width * height * per_pixel


def _bytes_per_pixel(mode: str) -> int:
    return 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4  # LA, PA: 4 in PIL


def _planes_from_pil(im: Image.Image, draft: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode, shrink to :data:`WORK_SIDE` and make upright; never modifies a caller's image."""
    width, height = im.size
    if width * height > MAX_PIXELS or (draft and max(width, height) > MAX_SIDE):
        raise InvalidImageError(too_large(width, height))
    if draft:  # our own freshly opened file: let the JPEG decoder downscale by up to 8x
        try:
            im.draft(None, (WORK_SIDE, WORK_SIDE))
        except _DECODE_ERRORS as exc:
            raise InvalidImageError(
                f"The image could not be read ({exc}). Save it again as PNG or JPEG."
            ) from exc
        if _decoded_bytes(im) > MAX_DECODED_BYTES:
            raise InvalidImageError(
                f"The image is too large to decode ({width}x{height} pixels"
                f"{', with transparency' if _target_mode(im) in ('LA', 'RGBA') else ''}): it would take "
                f"{_decoded_bytes(im) / 2**20:,.0f} MB, at most {MAX_DECODED_BYTES >> 20} MB are used. "
                "Crop it around the digit, shrink it, or save it as JPEG, and try again."
            )
    try:
        im.load()
        orientation = _orientation(im)
        im = _convert_mode(im)
        factor = math.ceil(max(im.size) / WORK_SIDE)
        if factor > 1:
            im = im.reduce(factor)
        if orientation is not None:
            im = im.transpose(orientation)
        array = np.asarray(im)
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(too_large(width, height)) from exc
    except _DECODE_ERRORS as exc:
        raise InvalidImageError(
            f"The image could not be decoded ({exc}); it may be truncated. Save it again as PNG or JPEG."
        ) from exc
    if im.mode == "I":  # 16-bit gray, or 8-bit values widened to 16 bits
        array = np.clip(array.astype(np.float32) / (255.0 if array.max() <= 255 else 65535.0), 0.0, 1.0)
    return _planes_from_array(array)


def _orientation(im: Image.Image) -> Image.Transpose | None:
    """The transpose the EXIF orientation asks for; EXIF over 64 KiB (a JPEG's most) is not parsed."""
    exif = im.info.get("exif")
    if isinstance(exif, bytes) and len(exif) > MAX_EXIF_BYTES:
        return None
    return _ORIENTATION.get(im.getexif().get(0x0112, 1))


def _convert_mode(im: Image.Image) -> Image.Image:
    """Any PIL mode -> one of L, LA, RGB, RGBA, I, F (what ``reduce`` and numpy understand)."""
    target = _target_mode(im)
    return im if target == im.mode else im.convert(target)


def _target_mode(im: Image.Image) -> str:
    if "transparency" in im.info and im.mode in ("L", "RGB", "P"):
        return "RGBA"
    if im.mode.startswith("I;16") or im.mode == "I":
        return "I"
    if im.mode in ("L", "LA", "RGB", "RGBA", "F"):
        return im.mode
    if im.mode == "1":
        return "L"
    if im.mode in ("PA", "La", "RGBa"):
        return "RGBA"
    return "RGB"  # P, CMYK, YCbCr, LAB, HSV


def _planes_from_array(array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(H, W)``, ``(H, W, C)`` with C in 1..4 -> gray and alpha planes in [0, 1]."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (2, 3, 4)):
        raise InvalidImageError(
            f"An image array must be (H, W), (H, W, 3) or (H, W, 4); got shape {array.shape}."
        )
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise InvalidImageError(f"The image array is empty (shape {array.shape}).")
    if height * width > MAX_PIXELS:
        raise InvalidImageError(too_large(width, height))
    factor = math.ceil(max(height, width) / WORK_SIDE)
    if factor > 1 and array.dtype == np.uint8 and (array.ndim == 2 or array.shape[2] in (3, 4)):
        # Shrink big 8-bit arrays through PIL before making float copies of them.
        array = np.asarray(Image.fromarray(np.ascontiguousarray(array)).reduce(factor))
    values = _as_unit_float(array)
    if values.ndim == 2:
        gray, alpha = values, None
    elif values.shape[2] in (3, 4):
        gray, alpha = values[:, :, :3] @ _LUMA, (values[:, :, 3] if values.shape[2] == 4 else None)
    else:
        gray, alpha = values[:, :, 0], values[:, :, 1]
    gray = _shrink(gray)
    return gray, (None if alpha is None else _shrink(alpha))


def _as_unit_float(array: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / small ints / bool / float in [0, 1] -> float32 in [0, 1]."""
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise InvalidImageError(
                f"Integer image values must lie in 0..255; got {low}..{high}. "
                "Pass uint8, or floats in [0, 1]."
            )
        return array.astype(np.float32) / 255.0
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidImageError(f"Unsupported image dtype {array.dtype}; pass uint8, or floats in [0, 1].")
    values = array.astype(np.float32)
    if not np.isfinite(values).all():
        raise InvalidImageError("The image contains NaN or infinite values; pass finite floats in [0, 1].")
    low, high = float(values.min()), float(values.max())
    if low < -1e-3 or high > 1.0 + 1e-3:
        raise InvalidImageError(
            f"Float image values must lie in [0, 1]; got {low:.3g}..{high:.3g}. Divide 0..255 values by 255."
        )
    return np.clip(values, 0.0, 1.0)


def _shrink(plane: np.ndarray) -> np.ndarray:
    """Area-average a float plane down to at most :data:`WORK_SIDE` per side.

    A plane small enough is returned as it is, possibly a strided view (the
    alpha of RGBA): the analysis reduces or reads it anyway, and a
    contiguous copy of a canvas's alpha was 3% of its preprocessing.
    """
    factor = math.ceil(max(plane.shape) / WORK_SIDE)
    if factor <= 1:
        return plane.astype(np.float32, copy=False)
    return np.asarray(Image.fromarray(plane.astype(np.float32)).reduce(factor), dtype=np.float32)
