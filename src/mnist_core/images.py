"""Decoding of drawings, uploads and arrays, with bounded time and memory.

Every accepted input (numpy array, PIL image, PNG/JPEG bytes, a binary file
object, a path) becomes a gray plane and an optional alpha plane, float32 in
[0, 1], at most :data:`WORK_SIDE` pixels per side. Only PNG and JPEG are
opened; the pixel count, and the memory the decoded image would take, are
checked from the header before decoding, so a decompression bomb (a few
hundred kilobytes of PNG that decode to gigabytes) is refused without being
decoded. Unreadable input raises :class:`InvalidImageError` with a message a
user can act on.
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

ImageSource: TypeAlias = (
    np.ndarray | Image.Image | bytes | bytearray | memoryview | BinaryIO | str | os.PathLike[str]
)

MAX_PIXELS = 100_000_000  # larger images are refused before decoding (decompression bombs)
# Memory one decoded upload may take (PIL's own layout: 1 byte per pixel for gray, 4 for colour).
# A PNG cannot be decoded at a lower resolution, so this, not the pixel count, bounds what a
# small file can cost: 128 MiB admits an 8000x8000 gray scan or a 5700x5700 colour one, and
# costs at most about twice that at its peak (PIL premultiplies RGBA while shrinking it).
# JPEGs are decoded at up to 1/8 scale first, so any JPEG under MAX_PIXELS fits.
MAX_DECODED_BYTES = 128 * 2**20
WORK_SIDE = 1024  # images are shrunk to at most this side before any float work
_FORMATS = ("PNG", "JPEG")
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
        return _planes_from_pil(_open(bytes(image), "The upload"), draft=True)
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
        return _planes_from_pil(_open(bytes(data), "The upload"), draft=True)
    raise InvalidImageError(
        f"Cannot read an image from a {type(image).__name__}: pass a numpy array, a PIL image, "
        "PNG/JPEG bytes or a binary file."
    )


def _open(data: bytes, what: str) -> Image.Image:
    """Bytes -> a lazily decoded PIL image, refusing non-images and decompression bombs."""
    if not data:
        raise InvalidImageError(f"{what} is empty (0 bytes): choose a PNG or JPEG image of a digit.")
    try:
        im = Image.open(io.BytesIO(data), formats=_FORMATS)
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(_too_large(None, None)) from exc
    except (UnidentifiedImageError, *_DECODE_ERRORS) as exc:
        raise InvalidImageError(
            f"{what} is not a PNG or JPEG image (or it is damaged): "
            "save the digit as .png or .jpg and try again."
        ) from exc
    return im


def _too_large(width: int | None, height: int | None) -> str:
    size = f" ({width}x{height})" if width else ""
    return (
        f"The image is too large{size}: at most {MAX_PIXELS // 1_000_000} megapixels are accepted. "
        "Crop or shrink it around the digit and try again."
    )


def _decoded_bytes(im: Image.Image) -> int:
    """What PIL allocates to decode ``im`` at its (drafted) size, and to convert it (see _convert_mode)."""
    per_pixel = 1 if im.mode in ("1", "L", "P") else 2 if im.mode.startswith("I;16") else 4
    if im.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        per_pixel += 4  # converted to L, I, RGB or RGBA: a second full-size copy
    width, height = im.size
    return width * height * per_pixel


def _planes_from_pil(im: Image.Image, draft: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode, shrink to :data:`WORK_SIDE` and make upright; never modifies a caller's image."""
    width, height = im.size
    if width * height > MAX_PIXELS:
        raise InvalidImageError(_too_large(width, height))
    if draft:  # our own freshly opened file: let the JPEG decoder downscale by up to 8x
        try:
            im.draft(None, (WORK_SIDE, WORK_SIDE))
        except _DECODE_ERRORS as exc:
            raise InvalidImageError(
                f"The image could not be read ({exc}). Save it again as PNG or JPEG."
            ) from exc
        if _decoded_bytes(im) > MAX_DECODED_BYTES:
            raise InvalidImageError(
                f"The image is too large to decode ({width}x{height} pixels, {im.mode}): "
                f"at most {MAX_DECODED_BYTES >> 20} MB of pixels are accepted. Crop it around "
                "the digit, shrink it, or save it as JPEG, and try again."
            )
    try:
        im.load()
        orientation = _ORIENTATION.get(im.getexif().get(0x0112, 1))
        im = _convert_mode(im)
        factor = math.ceil(max(im.size) / WORK_SIDE)
        if factor > 1:
            im = im.reduce(factor)
        if orientation is not None:
            im = im.transpose(orientation)
        array = np.asarray(im)
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(_too_large(width, height)) from exc
    except _DECODE_ERRORS as exc:
        raise InvalidImageError(
            f"The image could not be decoded ({exc}); it may be truncated. Save it again as PNG or JPEG."
        ) from exc
    if im.mode == "I":  # 16-bit gray, or 8-bit values widened to 16 bits
        array = np.clip(array.astype(np.float32) / (255.0 if array.max() <= 255 else 65535.0), 0.0, 1.0)
    return _planes_from_array(array)


def _convert_mode(im: Image.Image) -> Image.Image:
    """Any PIL mode -> one of L, LA, RGB, RGBA, I, F (what ``reduce`` and numpy understand)."""
    if "transparency" in im.info and im.mode in ("L", "RGB", "P"):
        return im.convert("RGBA")
    if im.mode.startswith("I;16") or im.mode == "I":
        return im.convert("I")
    if im.mode in ("L", "LA", "RGB", "RGBA", "F"):
        return im
    if im.mode == "1":
        return im.convert("L")
    if im.mode in ("PA", "La", "RGBa"):
        return im.convert("RGBA")
    return im.convert("RGB")  # P, CMYK, YCbCr, LAB, HSV


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
        raise InvalidImageError(_too_large(width, height))
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
