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
import struct
import subprocess
import sys
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

# One call in a fresh process: CPU seconds and peak RSS growth (MiB), plus the error it raised.
MEASURE = r"""
import json, sys, time
from pathlib import Path
from mnist_core import archive, infer
from mnist_core.errors import MnistLabError

def status_mib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(field)

kind, path, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
data = path.read_bytes()
call = (lambda: archive.import_run(data, out)) if kind == "zip" else (lambda: infer.preprocess(data))
if kind != "zip":  # first-call imports and allocations (numpy, PIL plugins), not measured
    import io
    import numpy as np
    from PIL import Image
    warm = io.BytesIO()
    Image.fromarray(np.pad(np.full((10, 4), 255, np.uint8), 9)).save(warm, "PNG")
    infer.preprocess(warm.getvalue())
Path("/proc/self/clear_refs").write_text("5")  # peak RSS (VmHWM, ru_maxrss) := current RSS
before, start = status_mib("VmRSS"), time.process_time()
try:
    call()
    error, message = None, ""
except MnistLabError as exc:
    error, message = type(exc).__name__, str(exc)
cpu = time.process_time() - start
peak = status_mib("VmHWM")  # what getrusage's ru_maxrss reports, but reset by clear_refs
print(json.dumps({"error": error, "message": message, "cpu_s": cpu, "rss_growth_mib": peak - before,
                  "bytes": len(data)}))
"""


def measure(kind: str, data: bytes, tmp_path: Path) -> dict:
    """Decode (``kind="image"``) or import (``kind="zip"``) ``data`` in a fresh process."""
    path = tmp_path / f"case-{kind}"
    path.write_bytes(data)
    out = tmp_path / "checkpoints-measured"
    out.mkdir(exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", MEASURE, kind, str(path), str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    path.unlink()
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
    result = measure("zip", zip_with_entries(100_000, zip64=True), tmp_path)
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
