"""Format checks of PNG and JPEG files, from their headers, before any pixel is decoded.

What decoding a file will cost is bounded from its chunk and marker
structure alone (:func:`check_layout`): the sides and the pixel count; for a
PNG the number of chunks (PIL walks them in Python); for a JPEG the kind of
frame, the number of markers, of stray bytes and of scans (libjpeg runs over
the whole image once per scan), the EXIF size and, when it has several
scans, the coefficient buffers libjpeg keeps for the whole image. So a
decompression bomb, a 1x100,000,000 PNG or a progressive JPEG repeating one
scan 10,000 times is refused in milliseconds with an
:class:`InvalidImageError` a user can act on; :mod:`mnist_core.images`
decodes what passes.
"""

from __future__ import annotations

import re
import struct

from .errors import InvalidImageError

MAX_PIXELS = 100_000_000  # larger images are refused before decoding (decompression bombs)
MAX_SIDE = 16_384  # PIL keeps a pointer and a decoder pass per row: 1x100,000,000 cost +750 MB
# A progressive (or multi-scan) JPEG keeps 2 bytes per pixel and component for the whole image
# while its scans arrive, whatever the draft scale; libjpeg then runs over every block once per
# scan, and an image repeating an empty scan 10,000 times cost 54 s. A photo has 1 to ~12 scans.
MAX_COEFFICIENT_BYTES = 128 * 2**20
MAX_SCANS = 100
MAX_JPEG_MARKERS = 1_000  # a photo has a few dozen (restart markers inside the data not counted)
MAX_JPEG_JUNK = 64 * 2**10  # stray bytes before the first scan: PIL skips them one at a time
MAX_EXIF_BYTES = 64 * 2**10  # a JPEG's EXIF fits one segment; a larger PNG eXIf chunk is ignored
MAX_PNG_CHUNKS = 20_000  # encoders write 8-64 KB chunks: a 32 MB file has a few thousand

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHUNK_HEADER = struct.Struct(">I4s")
# The next marker after a scan's entropy-coded data: 0xFF then a code that is not a stuffed zero,
# a restart marker (inside the data) or another 0xFF (fill). One C-speed search per scan.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_STANDALONE = {0x01, 0xD8, *range(0xD0, 0xD8)}  # markers without a length
_FRAMES = {0xC0, 0xC1, 0xC2}  # baseline, extended and progressive Huffman, 8-bit: what libjpeg reads
_OTHER_FRAMES = {0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


# Other image formats, told by their first bytes, so that a refusal can name what the file is.
_OTHER_FORMATS = (
    (b"GIF87a", "GIF"), (b"GIF89a", "GIF"), (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"), (b"8BPS", "Photoshop (PSD)"), (b"%PDF", "PDF"),
)  # fmt: skip
_ISO_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF", b"avif": "AVIF"}


def other_format(data: bytes) -> str | None:
    """The name of the image format ``data`` starts like, when it is one of the others (GIF, WebP,
    HEIC...); None for PNG, JPEG and anything unknown."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[4:8] == b"ftyp":
        return _ISO_BRANDS.get(data[8:12])
    return next((name for magic, name in _OTHER_FORMATS if data.startswith(magic)), None)


def check_layout(data: bytes) -> None:
    """Refuse a PNG or JPEG whose headers promise a slow or memory-hungry decode.

    Reads only the chunk/marker structure (PNG: one step per chunk; JPEG:
    one step per marker, with one C-speed search across each scan's data),
    so it costs milliseconds on any file up to ``images.MAX_FILE_BYTES``. A
    file that is neither, or ends early, is left to PIL, which says so.
    """
    if data.startswith(_PNG_SIGNATURE):
        _check_png(data)
    elif data.startswith(b"\xff\xd8"):
        _check_jpeg(data)


def _check_png(data: bytes) -> None:
    at, chunks = len(_PNG_SIGNATURE), 0
    while at + _CHUNK_HEADER.size <= len(data):
        length, kind = _CHUNK_HEADER.unpack_from(data, at)
        if kind == b"IHDR" and chunks == 0 and length >= 8:
            _check_sides(*struct.unpack_from(">II", data, at + 8))
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise InvalidImageError(
                f"This PNG is cut into more than {MAX_PNG_CHUNKS:,} chunks (an image has a few thousand "
                "at most): it is damaged or made to be slow to read. Save it again as PNG or JPEG."
            )
        if kind == b"IEND":
            return
        at += _CHUNK_HEADER.size + length + 4  # + CRC


def _check_jpeg(data: bytes) -> None:
    """Walk the markers: frame header, scan count, junk and marker count within bounds."""
    at, markers, scans, junk, exif, first_scan_components = 2, 0, 0, 0, 0, 0
    frame: tuple[int, bytes] | None = None
    while at + 1 < len(data):
        if data[at] != 0xFF or data[at + 1] == 0xFF:  # junk or fill bytes: skip to the next marker
            # Before the first scan, look no further than the stray bytes still allowed (+2: the marker
            # itself): a file of 20 MB of fill is refused after 64 KiB, not after a walk through all of it.
            stop = at + MAX_JPEG_JUNK - junk + 2 if scans == 0 else len(data)
            found = _NEXT_MARKER.search(data, at, stop)
            if found is None:
                if stop < len(data):
                    raise _slow_jpeg(f"more than {MAX_JPEG_JUNK:,} stray bytes between its markers")
                break
            if scans == 0:
                junk += found.start() - at
            at = found.start()
            continue
        marker, markers = data[at + 1], markers + 1
        if markers > MAX_JPEG_MARKERS:
            raise _slow_jpeg(f"more than {MAX_JPEG_MARKERS:,} markers (a photo has a few dozen)")
        if junk > MAX_JPEG_JUNK:
            raise _slow_jpeg(f"more than {MAX_JPEG_JUNK:,} stray bytes between its markers")
        if marker == 0xD9:
            break
        if marker in _STANDALONE:
            at += 2
            continue
        if at + 4 > len(data):
            break
        end = at + 2 + struct.unpack_from(">H", data, at + 2)[0]
        if marker in _FRAMES or marker in _OTHER_FRAMES:  # libjpeg reads the first, PIL the last
            _check_frame(marker, data[at + 4 : end])
            frame = frame or (marker, data[at + 4 : end])
        if marker == 0xE1 and data.startswith(b"Exif\0\0", at + 4):
            exif += end - at - 4  # PIL joins every EXIF segment, one copy each, then parses them
            if exif > MAX_EXIF_BYTES:
                raise _slow_jpeg("EXIF metadata in several segments (a photo has one, of at most 64 KB)")
        if marker == 0xDA:
            scans += 1
            if scans == 1 and at + 4 < len(data):
                first_scan_components = data[at + 4]
            if scans > MAX_SCANS:
                raise _slow_jpeg(f"more than {MAX_SCANS} scans (a progressive photo has about 10)")
            found = _NEXT_MARKER.search(data, end)  # the scan's data runs to the next marker
            end = len(data) if found is None else found.start()
        at = end
    if frame is not None and scans:
        _check_coefficients(scans, first_scan_components, *frame)


def _slow_jpeg(what: str) -> InvalidImageError:
    return InvalidImageError(
        f"This JPEG has {what}: it is damaged, or made to be slow to read. "
        "Save it again as an ordinary JPEG or as PNG."
    )


def _check_frame(marker: int, header: bytes) -> None:
    """The frame header (SOFn): a kind libjpeg reads here, and sides within bounds."""
    if marker not in _FRAMES:
        raise InvalidImageError(
            "This JPEG is of a kind this app does not read (lossless, hierarchical or arithmetic-coded). "
            "Save it again as an ordinary JPEG or as PNG."
        )
    if len(header) >= 5:
        height, width = struct.unpack_from(">HH", header, 1)
        _check_sides(width, height)


def _check_coefficients(scans: int, first_scan_components: int, marker: int, header: bytes) -> None:
    """The whole-image coefficient buffers a JPEG needs unless it is one scan of every component."""
    if len(header) < 6 or (marker != 0xC2 and scans == 1 and first_scan_components == header[5]):
        return  # one interleaved scan: libjpeg decodes it a row of blocks at a time
    height, width = struct.unpack_from(">HH", header, 1)
    components = [header[7 + 3 * i] for i in range(header[5]) if 7 + 3 * i < len(header)]
    h_max = max((c >> 4 for c in components), default=1) or 1
    v_max = max((c & 15 for c in components), default=1) or 1
    blocks = 0
    for c in components:  # libjpeg rounds each component's blocks up to whole MCUs
        h, v = max(c >> 4, 1), max(c & 15, 1)
        blocks += _ceil(_ceil(width * h, h_max * 8), h) * h * _ceil(_ceil(height * v, v_max * 8), v) * v
    if blocks * 128 > MAX_COEFFICIENT_BYTES:  # 64 coefficients of 2 bytes per 8x8 block
        raise InvalidImageError(
            f"The image is too large to decode ({width}x{height} pixels, a multi-scan JPEG): it would "
            f"take {blocks * 128 / 2**20:,.0f} MB of memory, at most {MAX_COEFFICIENT_BYTES >> 20} MB are "
            "used. Shrink it or crop it around the digit, or save it as an ordinary JPEG, and try again."
        )


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _check_sides(width: int, height: int) -> None:
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise InvalidImageError(too_large(width, height))


def too_large(width: int | None, height: int | None) -> str:
    """The message for an image over :data:`MAX_PIXELS` or :data:`MAX_SIDE` (sides if known)."""
    size = f" ({width}x{height})" if width else ""
    return (
        f"The image is too large{size}: at most {MAX_PIXELS // 1_000_000} megapixels, and "
        f"{MAX_SIDE:,} pixels a side, are accepted. Crop or shrink it around the digit and try again."
    )
