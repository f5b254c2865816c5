"""Hostile shapes of zip and image files: refused from their headers, before the costly parse or decode.

Zips (issue 29, item 4): a zip whose central directory lists millions of
entries cost 1.5 GiB and 19 s before ``zipfile.ZipFile`` had parsed it; the
entry count and the directory size are now read from the end records first.

Images (item 5): a progressive JPEG repeating its smallest scan, a 1-pixel-wide
PNG 100 million rows tall, a progressive 4:4:4 JPEG whose coefficient buffers
alone exceed the budget, and friends. Each shape is decoded the way the Draw
page and the CLI do it (``infer.preprocess`` on the file's bytes) in a fresh
Python process per shape, which reports its CPU time (``time.process_time``)
and its peak RSS growth (``VmHWM``, the counter ``ru_maxrss`` reports, reset to the
current RSS through ``/proc/self/clear_refs`` just before the call): C
allocations (PIL, libjpeg, zlib) are counted, which tracemalloc would miss.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mnist_core import archive, runs
from mnist_core.archive import ArchiveError

MB = 2**20
LINUX_PEAK = pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(),
    reason="needs Linux's /proc/self/clear_refs to reset the peak RSS",
)
ROOT = Path(__file__).resolve().parents[2]

# Each case in a process of its own, forked from one that has imported everything and decoded a
# small image once (so imports and first-call allocations are not measured): its CPU time and its
# peak RSS growth (VmHWM, what getrusage's ru_maxrss reports, reset to the current RSS through
# /proc/self/clear_refs just before the call; the RSS before is subtracted).
MEASURE = r"""
import io, json, os, sys, time
from pathlib import Path
import numpy as np
from PIL import Image
from mnist_core import archive, infer
from mnist_core.errors import MnistLabError

def status_mib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(field)

def run(kind, path, out):
    data = path.read_bytes()
    call = (lambda: archive.import_run(data, out)) if kind == "zip" else (lambda: infer.preprocess(data))
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    before, start = status_mib("VmRSS"), time.process_time()
    try:
        call()
        error, message = None, ""
    except MnistLabError as exc:
        error, message = type(exc).__name__, str(exc)
    return {"error": error, "message": message, "cpu_s": time.process_time() - start,
            "rss_growth_mib": status_mib("VmHWM") - before, "bytes": len(data)}

kind, out, paths = sys.argv[1], Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]]
warm = io.BytesIO()
Image.fromarray(np.pad(np.full((10, 4), 255, np.uint8), 9)).save(warm, "PNG")
infer.preprocess(warm.getvalue())
results = {}
for path in paths:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        os.write(write_end, json.dumps(run(kind, path, out)).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        results[path.name] = json.loads(pipe.read())
    os.waitpid(pid, 0)
print(json.dumps(results))
"""


def measure(kind: str, cases: dict[str, bytes | Callable[[], bytes]], tmp_path: Path) -> dict[str, dict]:
    """Decode (``kind="image"``) or import (``kind="zip"``) each case, each in a process of its own."""
    folder = tmp_path / f"cases-{kind}"
    folder.mkdir()
    for name, data in cases.items():
        (folder / name).write_bytes(data() if callable(data) else data)  # one in memory at a time
    out = tmp_path / "checkpoints-measured"
    out.mkdir(exist_ok=True)
    paths = [str(folder / name) for name in cases]
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", MEASURE, kind, str(out), *paths],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    shutil.rmtree(folder)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- zips ------------------------------------------------------------------------------

_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # zipfile's structCentralDir: 46 bytes, then the name
_LOCAL = struct.Struct("<4s2B4HL2L2H")  # a local file header: 30 bytes, then the name
_END = struct.Struct("<4s4H2LH")  # end of central directory: 22 bytes
_END64 = struct.Struct("<4sQ2H2L4Q")  # ZIP64 end of central directory: 56 bytes
_LOCATOR64 = struct.Struct("<4sLQL")  # ZIP64 locator: 20 bytes


def zip_with_entries(entries: int, claimed: int | None = None, claimed_size: int | None = None,
                     zip64: bool = False) -> bytes:  # fmt: skip
    """A zip of one empty stored file ``config.json`` whose central directory lists it ``entries`` times.

    ``claimed`` and ``claimed_size`` make the end record lie about the entry
    count and the directory's size; ``zip64`` adds the ZIP64 records (which
    hold the counts once they pass 65535).
    """
    name = b"config.json"
    local = _LOCAL.pack(b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name
    one = _CENTRAL.pack(
        b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0x81A4 << 16, 0
    )
    directory = (one + name) * entries
    count = entries if claimed is None else claimed
    size = len(directory) if claimed_size is None else claimed_size
    tail = b""
    if zip64:
        end64_at = len(local) + len(directory)
        tail = _END64.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, len(local))
        tail += _LOCATOR64.pack(b"PK\x06\x07", 0, end64_at, 1)
        end = _END.pack(b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    else:
        end = _END.pack(b"PK\x05\x06", 0, 0, min(count, 0xFFFF), min(count, 0xFFFF), size, len(local), 0)
    return local + directory + tail + end


def test_the_crafted_zip_is_a_zip_that_zipfile_reads() -> None:
    """The helper's zips are real: zipfile lists every entry (so the refusals below are not format errors)."""
    import io
    import zipfile

    for zip64 in (False, True):
        with zipfile.ZipFile(io.BytesIO(zip_with_entries(3, zip64=zip64))) as zf:
            assert [i.filename for i in zf.infolist()] == ["config.json"] * 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (lambda: zip_with_entries(100_000, zip64=True), "lists 100,000 entries"),
        (lambda: zip_with_entries(2, claimed=4_200_000, zip64=True), "lists 4,200,000 entries"),
        (lambda: zip_with_entries(2, claimed=60_000), "lists 60,000 entries"),
        (lambda: zip_with_entries(5_000, claimed=2), "table of contents is 285,000 bytes"),
        (
            lambda: zip_with_entries(2, claimed=2, claimed_size=188 * MB, zip64=True),
            "table of contents is 197,132,288 bytes",
        ),
    ],
    ids=["100k-entries", "claims-4.2M-zip64", "claims-60k", "lies-small-count", "claims-188MiB-directory"],
)
def test_a_zip_listing_too_many_entries_is_refused_before_its_directory_is_parsed(
    runs_dir: Path, data, message: str
) -> None:
    with pytest.raises(ArchiveError, match=message) as caught:
        archive.import_run(data(), runs_dir)
    assert "a run's zip" in str(caught.value)
    assert list(runs_dir.iterdir()) == [], "a refused import left something behind"


def test_an_end_record_hidden_in_the_comment_is_the_one_checked(runs_dir: Path) -> None:
    """zipfile takes the last end record of the final 64 KiB: a fake one in the comment, claiming 1 entry.

    Its directory size spans the real 60,000 entries, which zipfile would
    parse before failing on the real end record; the size is what is refused.
    """
    real = zip_with_entries(60_000)
    directory_at = _LOCAL.size + len(b"config.json")
    fake_at = len(real) + 2
    fake = _END.pack(b"PK\x05\x06", 0, 0, 1, 1, fake_at - directory_at, directory_at, 0)
    data = real[:-2] + struct.pack("<H", 2 + _END.size) + b"xx" + fake
    with pytest.raises(ArchiveError, match="table of contents is 3,420,024 bytes"):
        archive.import_run(data, runs_dir)


@LINUX_PEAK
def test_a_zip_with_100k_entries_costs_almost_nothing(tmp_path: Path) -> None:
    """Before the fix zipfile built 100,000 ZipInfo objects first (~0.4 s, ~60 MiB; 4.2M: 19 s, 1.5 GiB)."""
    result = measure("zip", {"100k": zip_with_entries(100_000, zip64=True)}, tmp_path)["100k"]
    print(f"zip 100k entries: {result}")
    assert result["error"] == "ArchiveError" and "100,000 entries" in result["message"], result
    assert result["cpu_s"] < 0.1, result
    assert result["rss_growth_mib"] < 16, result


def test_a_run_exported_by_the_app_still_imports(runs_dir: Path, synthetic_data_dir: Path) -> None:
    from mnist_core.config import RunConfig
    from mnist_core.pipeline import run_training

    run_id = run_training(
        RunConfig(hidden=(8,), epochs=1), runs_dir=runs_dir, data_root=synthetic_data_dir
    ).id
    data = archive.export_run(run_id, runs_dir)
    comment = data[:-2] + struct.pack("<H", 5) + b"hello"  # an archive comment is fine
    for zipped in (data, comment):
        info = archive.import_run(zipped, runs_dir)
        assert info.id != run_id and runs.load_run(info.id, runs_dir).name == info.name


# -- images ----------------------------------------------------------------------------


def jpeg_bytes(image, **options) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, "JPEG", **options)
    return buf.getvalue()


def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """``(marker, start, end)`` of each segment of a well-formed JPEG, a scan with its data."""
    import re

    out, at = [], 2
    while at < len(data):
        marker = data[at + 1]
        if marker == 0xD9:
            return [*out, (marker, at, at + 2)]
        end = at + 2 + struct.unpack_from(">H", data, at + 2)[0]
        if marker == 0xDA:
            end = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]").search(data, end).start()
        out.append((marker, at, end))
        at = end
    return out


def claiming(data: bytes, width: int, height: int) -> bytes:
    """The JPEG with its frame header patched to ``width x height``: libjpeg fills the missing data with
    zeros, so it does all the work (and allocations) of a real file that size, from a small one."""
    start = next(s for m, s, _e in jpeg_segments(data) if m in (0xC0, 0xC1, 0xC2))
    return data[: start + 5] + struct.pack(">HH", height, width) + data[start + 9 :]


def with_scans(data: bytes, scans: int) -> bytes:
    """The JPEG with its smallest scan repeated until it has ``scans`` scans (libjpeg warns, goes on)."""
    segments = jpeg_segments(data)
    have = [(e - s, s, e) for m, s, e in segments if m == 0xDA]
    _size, start, end = min(have)
    eoi = segments[-1][1]
    return data[:eoi] + data[start:end] * (scans - len(have)) + data[eoi:]


def progressive(mode: str, width: int, height: int, scans: int | None = None, subsampling: int = 0) -> bytes:
    """A blank progressive JPEG claiming ``width x height``, made from a small real one."""
    from PIL import Image

    small = jpeg_bytes(Image.new(mode, (256, 256), "white"), progressive=True, subsampling=subsampling)
    data = claiming(small, width, height)
    return data if scans is None else with_scans(data, scans)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    import zlib

    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def blank_png(width: int, height: int, color_type: int = 0, depth: int = 8, interlace: int = 0,
              extra: bytes = b"", idat_size: int = 1 << 16, level: int = 9) -> bytes:  # fmt: skip
    """A valid all-zero PNG, compressed in chunks (a decompression bomb when large)."""
    import zlib

    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    row = 1 + (width * channels * depth + 7) // 8
    total = row * height if not interlace else row * height + 7 * height  # Adam7 adds filter bytes
    comp, parts, block = zlib.compressobj(level), [], bytes(1 << 20)
    while total > 0:
        parts.append(comp.compress(block[: min(total, len(block))]))
        total -= len(block)
    idat = b"".join(parts) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, interlace)
    chunks = b"".join(_png_chunk(b"IDAT", idat[i : i + idat_size]) for i in range(0, len(idat), idat_size))
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + extra + chunks + _png_chunk(b"IEND", b"")


def one_component_scan(width: int, height: int) -> bytes:
    """A baseline colour JPEG whose only scan holds one of its three components: libjpeg then keeps
    every component's coefficients for the whole image (+578 MiB at 10000x10000), as for a progressive one."""
    data = claiming(jpeg_bytes(_white("RGB"), subsampling=0), width, height)
    start = next(s for m, s, _e in jpeg_segments(data) if m == 0xDA)
    sos = data[start : start + 14]  # FF DA, length 12, 3 components, (id, tables) x 3, Ss, Se, AhAl
    return data[:start] + b"\xff\xda\x00\x08\x01" + sos[5:7] + sos[11:14] + data[start + 14 :]


def png_many_chunks(count: int) -> bytes:
    """A small PNG preceded by ``count`` empty private chunks (PIL reads each in Python)."""
    return blank_png(64, 64, extra=_png_chunk(b"prVt", b"") * count)


def png_tiny_idats(count: int) -> bytes:
    """A PNG whose (uncompressed) image data comes 1 byte per IDAT chunk: ``count`` chunks."""
    return blank_png(count // 1001, 1000, level=0, idat_size=1)


def palette_png(side: int) -> bytes:
    """Palette + transparency: PIL decodes 1 byte a pixel, then converts to RGBA (4 more)."""
    plte = _png_chunk(b"PLTE", bytes(range(256)) * 3)
    trns = _png_chunk(b"tRNS", bytes([0]) + bytes([255]) * 255)
    return blank_png(side, side, color_type=3, extra=plte + trns)


def jpeg_after_soi(insert: bytes) -> bytes:
    from PIL import Image

    data = jpeg_bytes(Image.new("L", (64, 64), "white"))
    return data[:2] + insert + data[2:]


def app_segments(count: int, marker: int, prefix: bytes) -> bytes:
    """``count`` APPn segments of 64 KB each starting with ``prefix``, zeros after it."""
    return (bytes([0xFF, marker]) + struct.pack(">H", 65535) + prefix + bytes(65533 - len(prefix))) * count


def baseline_noise(side: int, quality: int = 100, mode: str = "RGB") -> bytes:
    """Random pixels at high quality: as much entropy-coded data per pixel as a JPEG has."""
    import numpy as np
    from PIL import Image

    channels = 3 if mode == "RGB" else 1
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, channels), dtype=np.uint8)
    return jpeg_bytes(Image.fromarray(pixels.squeeze()), quality=quality, subsampling=0)


REFUSED = "InvalidImageError"
DECODED = "decoded"  # with or without a digit in it: any outcome but InvalidImageError
SHAPES = {
    # name: (bytes factory, expected outcome, message part). Each is decoded in a fresh process;
    # every one must cost under 2 s of CPU and 256 MiB of peak RSS growth.
    "issue-progressive-gray-10000-scan-x10000": (lambda: progressive("L", 10_000, 10_000, 10_000), REFUSED,
                                                 "more than 100 scans"),
    "issue-progressive-444-10000": (lambda: progressive("RGB", 10_000, 10_000), REFUSED,
                                    "too large to decode"),
    "issue-png-1x100000000": (lambda: blank_png(1, 100_000_000), REFUSED, "16,384 pixels a side"),
    "png-100000000x1": (lambda: blank_png(100_000_000, 1), REFUSED, "16,384 pixels a side"),
    "progressive-gray-4000-scans-x10000": (lambda: progressive("L", 4000, 4000, 10_000), REFUSED,
                                           "more than 100 scans"),
    "baseline-one-of-3-components-scanned-10000": (lambda: one_component_scan(10_000, 10_000), REFUSED,
                                                   "too large to decode"),
    "progressive-cmyk-6000": (lambda: progressive("CMYK", 6000, 6000), REFUSED, "too large to decode"),
    "png-2M-empty-chunks": (lambda: png_many_chunks(2_000_000), REFUSED, "more than 20,000 chunks"),
    "png-1M-1-byte-idats": (lambda: png_tiny_idats(1_000_000), REFUSED, "more than 20,000 chunks"),
    "jpeg-5M-comment-markers": (lambda: jpeg_after_soi(b"\xff\xfe\x00\x02" * 5_000_000), REFUSED,
                                "more than 1,000 markers"),
    "jpeg-20MB-junk": (lambda: jpeg_after_soi(b"\x00" * 20_000_000), REFUSED, "stray bytes"),
    "jpeg-20MB-fill": (lambda: jpeg_after_soi(b"\xff" * 20_000_000), REFUSED, "stray bytes"),
    "jpeg-490-exif-segments": (lambda: jpeg_after_soi(app_segments(490, 0xE1, b"Exif\0\0II*\0")), REFUSED,
                               "EXIF metadata in several segments"),
    "jpeg-lossless": (lambda: lossless_jpeg(), REFUSED, "of a kind this app does not read"),
    "file-33MB": (lambda: blank_png(64, 64) + bytes(33 * MB), REFUSED, "too large (33.0 MB)"),
    # The costliest files still accepted: at the coefficient budget with 100 scans, at the decode
    # budget for each PNG layout, the most pixels, and dense entropy-coded data.
    "progressive-gray-8000-100-scans": (lambda: progressive("L", 8000, 8000, 100), DECODED, ""),
    "progressive-444-4600-100-scans": (lambda: progressive("RGB", 4600, 4600, 100), DECODED, ""),
    "progressive-420-6500-100-scans": (lambda: progressive("RGB", 6500, 6500, 100, 2), DECODED, ""),
    "baseline-444-10000": (lambda: claiming(jpeg_bytes(_white("RGB"), subsampling=0), 10_000, 10_000),
                           DECODED, ""),
    "baseline-noise-2500-q100": (lambda: baseline_noise(2500), DECODED, ""),
    "png-gray-10000": (lambda: blank_png(10_000, 10_000), DECODED, ""),
    "png-gray-16384x6100": (lambda: blank_png(16_384, 6100), DECODED, ""),
    "png-rgb-5790": (lambda: blank_png(5790, 5790, color_type=2), DECODED, ""),
    "png-rgba-4090": (lambda: blank_png(4090, 4090, color_type=6), DECODED, ""),
    "png-rgba16-4090-interlaced": (lambda: blank_png(4090, 4090, color_type=6, depth=16, interlace=1),
                                   DECODED, ""),
    "png-palette-trns-3860": (lambda: palette_png(3860), DECODED, ""),
    "png-rgba-5790": (lambda: blank_png(5790, 5790, color_type=6), REFUSED, "too large to decode"),
    "png-gray16-4700": (lambda: blank_png(4700, 4700, depth=16), DECODED, ""),
    "png-1bit-16384x6100": (lambda: blank_png(16_384, 6100, depth=1), REFUSED, "too large to decode"),
    "png-1bit-8000": (lambda: blank_png(8000, 8000, depth=1), DECODED, ""),
}  # fmt: skip


def _white(mode: str):
    from PIL import Image

    return Image.new(mode, (256, 256), "white")


def lossless_jpeg() -> bytes:
    """A JPEG whose frame marker says SOF3 (lossless): no draft scaling, a full-size decode."""
    data = jpeg_bytes(_white("L"))
    start = next(s for m, s, _e in jpeg_segments(data) if m == 0xC0)
    return data[: start + 1] + b"\xc3" + data[start + 2 :]


@pytest.fixture(scope="module")
def measured_shapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    return measure(
        "image", {name: make for name, (make, *_rest) in SHAPES.items()}, tmp_path_factory.mktemp("s")
    )


@pytest.mark.slow
@LINUX_PEAK
@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_image_shape_is_refused_or_decoded_within_2s_and_256mib(
    shape: str, measured_shapes: dict[str, dict]
) -> None:
    _make, expected, message = SHAPES[shape]
    result = measured_shapes[shape]
    print(f"{shape}: {result['bytes']:,} bytes -> {result['error']} in {result['cpu_s']:.3f} s CPU, "
          f"peak RSS +{result['rss_growth_mib']:.1f} MiB: {result['message'][:100]}")  # fmt: skip
    if expected == REFUSED:
        assert result["error"] == REFUSED and message in result["message"], result
        assert result["cpu_s"] < 0.2 and result["rss_growth_mib"] < 16, result  # from the headers alone
    else:
        assert result["error"] != REFUSED, result
    assert result["cpu_s"] < 2.0, result
    assert result["rss_growth_mib"] < 256, result


ORDINARY = ["baseline", "progressive-420", "progressive-optimized-444", "progressive-gray", "restart-markers",
            "exif-rotated", "png", "png-interlaced", "png-rgba", "png-16-bit"]  # fmt: skip


def ordinary_file(name: str) -> bytes:
    """A digit saved the way cameras, editors and PIL save files."""
    import io

    from PIL import Image, ImageDraw

    gray = Image.new("L", (600, 400), 255)
    ImageDraw.Draw(gray).line([(250, 80), (350, 80), (280, 330)], fill=0, width=30)
    color = gray.convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: read, and the image turned upright
    jpegs = {
        "baseline": {},
        "progressive-420": {"progressive": True},
        "progressive-optimized-444": {"progressive": True, "optimize": True, "subsampling": 0},
        "restart-markers": {"restart_marker_blocks": 1},
        "exif-rotated": {"exif": exif},
    }
    if name in jpegs:
        return jpeg_bytes(color, **jpegs[name])
    if name == "progressive-gray":
        return jpeg_bytes(gray, progressive=True)
    image, options = {
        "png": (color, {}),
        "png-interlaced": (color, {"interlace": 1}),
        "png-rgba": (color.convert("RGBA"), {}),
        "png-16-bit": (gray.convert("I;16"), {}),
    }[name]
    buf = io.BytesIO()
    image.save(buf, "PNG", **options)
    return buf.getvalue()


@pytest.mark.parametrize("name", ORDINARY)
def test_ordinary_pngs_and_jpegs_still_decode(name: str) -> None:
    from mnist_core import infer

    x = infer.preprocess(ordinary_file(name))
    assert tuple(x.shape) == (1, 1, 28, 28)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: progressive("L", 10_000, 10_000, 10_000), "more than 100 scans"),
        (lambda: progressive("L", 1000, 1000, 101), "more than 100 scans"),
        (lambda: progressive("RGB", 10_000, 10_000), "too large to decode"),
        (lambda: one_component_scan(10_000, 10_000), "too large to decode"),
        (lambda: blank_png(1, 100_000_000), "16,384 pixels a side"),
        (lambda: png_many_chunks(20_001), "more than 20,000 chunks"),
        (lambda: jpeg_after_soi(b"\xff\xfe\x00\x02" * 1001), "more than 1,000 markers"),
        (lambda: jpeg_after_soi(b"\x00" * 70_000), "stray bytes"),
        (lambda: jpeg_after_soi(app_segments(2, 0xE1, b"Exif\0\0II*\0")), "EXIF metadata in several"),
        (lambda: lossless_jpeg(), "of a kind this app does not read"),
        (lambda: bytes(33 * MB), r"too large \(33\.0 MB\)"),
    ],
    ids=["issue-scan-x10000", "101-scans", "issue-progressive-444", "one-of-3-components", "issue-png-1x100M",
         "png-chunks",
         "jpeg-markers", "jpeg-junk", "jpeg-exif-segments", "jpeg-lossless", "33MB"],
)  # fmt: skip
def test_hostile_headers_are_refused_before_decoding(make, message: str) -> None:
    """In this process: refused with a message for the page and the CLI alike, in milliseconds."""
    import time

    from mnist_core import infer
    from mnist_core.errors import InvalidImageError

    data = make()
    start = time.process_time()
    with pytest.raises(InvalidImageError, match=message) as caught:
        infer.preprocess(data)
    assert time.process_time() - start < 0.2
    assert "upload" not in str(caught.value).lower()  # the same words fit the CLI


def test_100_scans_are_still_read() -> None:
    from mnist_core import infer
    from mnist_core.errors import ImageError, InvalidImageError

    try:
        infer.preprocess(progressive("L", 1000, 1000, 100))
    except ImageError as exc:  # blank: it may be refused as no digit, but not as unreadable
        assert not isinstance(exc, InvalidImageError), exc
