"""Uploads that are not images, empty, decompression bombs or huge: refused quickly, memory bounded.

Each case is decoded the way the Draw page does it (``infer.preprocess`` on
the uploaded bytes) in one fresh Python process, which reports for each the
CPU time taken and its peak memory growth: the peak RSS (``VmHWM``, the counter
``resource.getrusage`` reports as ``ru_maxrss``) is reset to the current RSS
before each case (Linux ``/proc/self/clear_refs``), so neither imports nor
an earlier case hide it.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from app_helpers import no_exception, open_page, texts
from PIL import Image, ImageDraw

from mnist_core.config import RunConfig
from mnist_core.images import MAX_DECODED_BYTES
from mnist_core.pipeline import run_training

MB = 2**20

MEASURE = r"""
import io, json, sys, time
from pathlib import Path
import numpy as np
from PIL import Image
from mnist_core import infer
from mnist_core.errors import MnistLabError

def status_mb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(field)

warm = io.BytesIO()
Image.fromarray(np.pad(np.full((10, 4), 255, np.uint8), 9)).save(warm, "PNG")
infer.preprocess(warm.getvalue())  # imports and first-call allocations, not measured
out = {}
for path in sorted(Path(sys.argv[1]).iterdir()):
    data = path.read_bytes()
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    before, start = status_mb("VmRSS"), time.process_time()  # CPU time: other processes do not count
    try:
        infer.preprocess(data)
        error, message = None, ""
    except MnistLabError as exc:
        error, message = type(exc).__name__, str(exc)
    out[path.name] = {"error": error, "message": message, "seconds": time.process_time() - start,
                      "rss_growth_mb": status_mb("VmHWM") - before, "bytes": len(data)}
    del data
print(json.dumps(out))
"""


def _chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def empty_png(width: int, height: int, color_type: int = 0) -> bytes:
    """A complete, valid PNG of zero bytes: a decompression bomb (30000x30000 gray is ~0.9 MB)."""
    channels = {0: 1, 2: 3, 6: 4}[color_type]
    comp = zlib.compressobj(1)
    row = comp.compress(b"\x00" * (1 + width * channels))
    body = [row] + [comp.compress(b"\x00" * (1 + width * channels)) for _ in range(height - 1)]
    idat = b"".join(body) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header is patched to claim ``width x height``."""
    buf = io.BytesIO()
    Image.new("L", (64, 64), 255).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def digit_png(side: int, mode: str) -> bytes:
    image = Image.new(mode, (side, side), "white")
    s = side / 280
    ImageDraw.Draw(image).line([(80 * s, 55 * s), (200 * s, 55 * s), (118 * s, 238 * s)], fill="black",
                               width=int(20 * s))  # fmt: skip
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _valid_png() -> bytes:
    return digit_png(280, "L")


def _gif() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (28, 28)).save(buf, "GIF")
    return buf.getvalue()


CASES = {
    # name: (bytes factory, expected error class or None, message part, max seconds, max RSS growth MiB)
    "text": (lambda: b"hello, I am not an image\n" * 100, "InvalidImageError", "not a PNG or JPEG", 0.5, 10),
    "zero-bytes": (lambda: b"", "InvalidImageError", "empty (0 bytes)", 0.5, 10),
    "gif": (_gif, "InvalidImageError", "is a GIF image: only PNG and JPEG are read", 0.5, 10),
    "html": (lambda: b"<html><script>alert(1)</script></html>", "InvalidImageError", "not a PNG or JPEG",
             0.5, 10),
    "truncated-png": (lambda: _valid_png()[:200], "InvalidImageError", "truncated", 0.5, 10),
    "bomb-30000x30000-gray": (lambda: empty_png(30_000, 30_000), "InvalidImageError", "too large", 0.5, 10),
    "bomb-10000x10000-rgba": (lambda: empty_png(10_000, 10_000, 6), "InvalidImageError",
                              "too large to decode", 0.5, 10),
    "jpeg-claiming-65000x65000": (lambda: jpeg_claiming(65_000, 65_000), "InvalidImageError", "too large",
                                  0.5, 10),
    "strip-100000x1": (lambda: empty_png(100_000, 1), "InvalidImageError", "16,384 pixels a side", 0.5, 10),
    # The largest accepted uploads: memory stays within the decode budget, and 256 MiB in all.
    "accepted-8000x8000-gray": (lambda: digit_png(8000, "L"), None, "", 2.0, MAX_DECODED_BYTES / MB + 16),
    "accepted-5700x5700-rgb": (lambda: digit_png(5700, "RGB"), None, "", 2.0, MAX_DECODED_BYTES / MB + 16),
}


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("uploads")
    for name, (make, *_rest) in CASES.items():
        (folder / name).write_bytes(make())
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", MEASURE, str(folder)], capture_output=True, text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc/self/clear_refs")
@pytest.mark.parametrize("case", list(CASES))
def test_upload_is_refused_quickly_or_read_within_a_memory_bound(
    measured: dict[str, dict], case: str
) -> None:
    _make, error, message, max_s, max_mb = CASES[case]
    result = measured[case]
    print(f"{case}: {result['bytes']:,} bytes -> {result['error']} in {result['seconds'] * 1000:.1f} ms, "
          f"peak RSS +{result['rss_growth_mb']:.1f} MiB")  # fmt: skip
    assert result["error"] == error, result
    assert message in result["message"], result
    assert result["seconds"] < max_s, result
    assert result["rss_growth_mb"] < max_mb, result


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # PIL's own, before our refusal
def test_a_bomb_uploaded_on_the_draw_page_gets_a_message(
    app_path: Path, runs_dir: Path, synthetic_data_dir: Path
) -> None:
    run_training(RunConfig(hidden=(16,), epochs=1), runs_dir=runs_dir, data_root=synthetic_data_dir)
    at = open_page(app_path, "pages/draw.py")
    at.button_group(key="draw_source").set_value("Upload")
    at = at.run()
    for name, data, message in [
        ("bomb.png", empty_png(12_000, 12_000), "too large"),
        ("empty.png", b"", "empty (0 bytes)"),
        ("notes.png", b"not an image", "not a PNG or JPEG"),
    ]:
        at.file_uploader(key="draw_upload").set_value((name, data, "image/png"))
        at = at.run()
        no_exception(at)
        assert any(message in w.value for w in at.warning), texts(at)
        assert "Prediction" not in {m.label for m in at.metric}
