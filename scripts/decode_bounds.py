"""Measure what hostile image uploads and run zips cost: CPU seconds and peak RSS growth, per shape.

    .venv/bin/python scripts/decode_bounds.py            # every shape, the slow-to-build ones too
    .venv/bin/python scripts/decode_bounds.py --quick    # only the shapes of the test suite
    .venv/bin/python scripts/decode_bounds.py --only png-dense

Each file is decoded the way the Draw page and the CLI do it (``infer.preprocess``
on its bytes; zips: ``archive.import_run``) in a process of its own, forked from
one that has done every import (see ``MEASURE`` in
tests/reliability/test_decode_bounds.py, which builds the shapes too). The
target (issue 29): every upload up to the size cap is refused or decoded in
under 2 s of CPU and 256 MiB above the baseline. Prints one line per shape and
the worst by CPU and by memory.
"""

from __future__ import annotations

import argparse
import io
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "reliability"))

import test_decode_bounds as shapes  # noqa: E402  (the builders and the measuring script)

from mnist_core import imagecheck, images  # noqa: E402

MB = 2**20


def issue_progressive_scan_x10000() -> bytes:
    """The issue's file: a real 10000x10000 progressive JPEG, its smallest scan repeated 10,000 times."""
    full = shapes.jpeg_bytes(Image.new("L", (10_000, 10_000), 255), progressive=True)
    return shapes.with_scans(full, 10_000)


def dense_png(side: int, color_type: int, random_share: float, depth: int = 8, interlace: int = 0) -> bytes:
    """Every row Paeth-filtered, ``random_share`` of each row random: the costliest inflate and unfilter.

    Interlaced, the same bytes are cut into Adam7's seven passes (rows of each
    pass are shorter; the data are just as random).
    """
    channels = {0: 1, 2: 3, 6: 4}[color_type]
    rng = np.random.default_rng(0)
    rows_of = [(side, side)] if not interlace else _adam7(side)
    comp, parts = zlib.compressobj(1), []
    for width_px, height in rows_of:
        width = width_px * channels * depth // 8
        noisy = int(width * random_share)
        for start in range(0, height, 256):
            rows = np.zeros((min(256, height - start), 1 + width), np.uint8)
            rows[:, 0] = 4  # Paeth
            rows[:, 1 : 1 + noisy] = rng.integers(0, 256, (rows.shape[0], noisy), dtype=np.uint8)
            parts.append(comp.compress(rows.tobytes()))
    idat = b"".join(parts) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, depth, color_type, 0, 0, interlace)
    chunks = b"".join(shapes._png_chunk(b"IDAT", idat[i : i + 65536]) for i in range(0, len(idat), 65536))
    return b"\x89PNG\r\n\x1a\n" + shapes._png_chunk(b"IHDR", ihdr) + chunks + shapes._png_chunk(b"IEND", b"")


def _adam7(side: int) -> list[tuple[int, int]]:
    """(width, height) of each Adam7 pass of a ``side x side`` image."""
    passes = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ]
    return [(-(-(side - x) // dx), -(-(side - y) // dy)) for x, y, dx, dy in passes]


def png_idat_chunks_at_cap() -> bytes:
    """Just under the chunk cap, each chunk carrying real data (what PIL walks in Python)."""
    stored = 5000 * 5001 + 5 * (5000 * 5001 // 65535 + 1) + 6  # zlib level 0: 5 bytes a block
    return shapes.blank_png(5000, 5000, level=0, idat_size=-(-stored // (imagecheck.MAX_PNG_CHUNKS - 10)))


def png_text_bombs(count: int) -> bytes:
    """``count`` zTXt chunks, each 100 MB of zeros compressed (PIL stops each at 1 MB)."""
    bomb = zlib.compress(bytes(100 * MB), 9)
    ztxt = shapes._png_chunk(b"zTXt", b"k\x00\x00" + bomb)
    return shapes.blank_png(64, 64, extra=ztxt * count)


def png_iccp_bomb() -> bytes:
    bomb = zlib.compress(bytes(300 * MB), 9)
    return shapes.blank_png(64, 64, extra=shapes._png_chunk(b"iCCP", b"icc\x00\x00" + bomb))


def jpeg_with_app_segments(count: int, marker: int = 0xE2, prefix: bytes = b"") -> bytes:
    return shapes.jpeg_after_soi(shapes.app_segments(count, marker, prefix))


def repeated_largest_scan(data: bytes, budget: int) -> bytes:
    """Repeat the JPEG's largest scan (in a dense image: a refinement scan that touches every
    coefficient) as often as the file size cap and the scan cap allow."""
    segments = shapes.jpeg_segments(data)
    scans = [(e - s, s, e) for m, s, e in segments if m == 0xDA]
    size, start, end = max(scans)
    repeats = min(imagecheck.MAX_SCANS - len(scans), (budget - len(data)) // size)
    eoi = segments[-1][1]
    return data[:eoi] + data[start:end] * repeats + data[eoi:]


def jpeg_icc_chunks() -> bytes:
    """255 APP2 ICC_PROFILE chunks of 64 KB: PIL joins them into one 16 MB profile."""
    out = b""
    for i in range(255):
        body = b"ICC_PROFILE\x00" + bytes([i + 1, 255]) + bytes(65519)
        out += b"\xff\xe2" + struct.pack(">H", len(body) + 2) + body
    return shapes.jpeg_after_soi(out)


def noise_jpeg(side: int, quality: int, mode: str = "RGB", **options) -> bytes:
    channels = 3 if mode == "RGB" else 1
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, channels), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels.squeeze()).save(buf, "JPEG", quality=quality, subsampling=0, **options)
    return buf.getvalue()


def progressive_noise_100_scans(side: int, quality: int) -> bytes:
    return shapes.with_scans(noise_jpeg(side, quality, "L", progressive=True), 100)


EXTRA: dict[str, Callable[[], bytes]] = {
    "issue-faithful-progressive-gray-10000-scan-x10000": issue_progressive_scan_x10000,
    "png-dense-paeth-gray-10000": lambda: dense_png(10_000, 0, 0.3),
    "png-dense-paeth-rgb-5790": lambda: dense_png(5790, 2, 0.3),
    "png-dense-paeth-rgba16-4090": lambda: dense_png(4090, 6, 0.2, depth=16),
    "png-dense-paeth-rgba16-4090-interlaced": lambda: dense_png(4090, 6, 0.2, depth=16, interlace=1),
    "png-dense-paeth-gray-10000-interlaced": lambda: dense_png(10_000, 0, 0.3, interlace=1),
    "png-idat-chunks-at-cap": png_idat_chunks_at_cap,
    "png-300-ztxt-bombs": lambda: png_text_bombs(300),
    "png-iccp-bomb": png_iccp_bomb,
    "jpeg-490-app2-segments-64KB": lambda: jpeg_with_app_segments(490),
    "jpeg-490-exif-app1-64KB": lambda: jpeg_with_app_segments(490, 0xE1, b"Exif\x00\x00II*\x00"),
    "jpeg-icc-255-chunks": jpeg_icc_chunks,
    "baseline-noise-rgb-3300-q100": lambda: noise_jpeg(3300, 100),
    "baseline-noise-rgb-3000-q95-restart-every-block": lambda: noise_jpeg(3000, 95, restart_marker_blocks=1),
    "progressive-noise-gray-4000-q100-100-scans": lambda: progressive_noise_100_scans(4000, 100),
    "progressive-noise-gray-5000-q90": lambda: noise_jpeg(5000, 90, "L", progressive=True),
    "progressive-noise-gray-2000-q100-largest-scan-repeated": lambda: repeated_largest_scan(
        noise_jpeg(2000, 100, "L", progressive=True), images.MAX_FILE_BYTES - 4096
    ),
    "progressive-noise-gray-8000-q75-largest-scan-repeated": lambda: repeated_largest_scan(
        noise_jpeg(8000, 75, "L", progressive=True), images.MAX_FILE_BYTES - 4096
    ),
}


def zip_4_2_million_entries() -> bytes:
    """The issue's zip: 4.2 million entries in its central directory."""
    return shapes.zip_with_entries(4_200_000, zip64=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the shapes of the test suite")
    parser.add_argument("--only", help="only the shapes whose name contains this")
    args = parser.parse_args()
    cases: dict[str, Callable[[], bytes]] = {name: make for name, (make, *_rest) in shapes.SHAPES.items()}
    if not args.quick:
        cases |= EXTRA
    cases = {k: v for k, v in cases.items() if not args.only or args.only in k}
    with tempfile.TemporaryDirectory() as tmp:
        results = shapes.measure("image", cases, Path(tmp))
        if not args.quick and (not args.only or args.only in "zip-4.2M-entries"):
            results |= shapes.measure("zip", {"zip-4.2M-entries": zip_4_2_million_entries}, Path(tmp))
    width = max(map(len, results))
    for name, r in results.items():
        outcome = r["error"] or "decoded"
        print(f"{name:<{width}}  {r['bytes'] / MB:7.2f} MB  {r['cpu_s']:7.3f} s CPU  "
              f"+{r['rss_growth_mib']:6.1f} MiB  {outcome}: {r['message'][:90]}")  # fmt: skip
    cpu = max(results, key=lambda n: results[n]["cpu_s"])
    rss = max(results, key=lambda n: results[n]["rss_growth_mib"])
    print(f"\nworst CPU: {cpu} ({results[cpu]['cpu_s']:.3f} s)")
    print(f"worst memory: {rss} (+{results[rss]['rss_growth_mib']:.1f} MiB)")
    bad = [n for n, r in results.items() if r["cpu_s"] >= 2 or r["rss_growth_mib"] >= 256]
    print("over the bound (2 s, 256 MiB):", ", ".join(bad) or "none")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
