"""The CLI piped into a reader that stops early (``| head``) ends quietly."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.fakeruns import make_fake_runs


@pytest.mark.slow
def test_runs_piped_into_head_prints_no_traceback(tmp_path):
    make_fake_runs(tmp_path, 1000)  # ~110 KB of output: more than a pipe holds, so the writer must hit EPIPE
    env_code = (
        "import os, sys; os.environ['MNIST_LAB_CHECKPOINTS'] = sys.argv[1];"
        "from mnist_core.cli import main; sys.exit(main(['runs']))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", env_code, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = proc.stdout.readline()  # like `head -1`: read one line, then close the pipe
    proc.stdout.close()
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert first
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert code == 0
