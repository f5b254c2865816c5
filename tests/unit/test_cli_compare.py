"""``python -m mnist_core compare``: the verdicts of issue 24 in a terminal."""

from __future__ import annotations

import json

import numpy as np

from mnist_core import runs
from mnist_core.calibration import unpack_correct
from mnist_core.cli import main
from tests.support.fakeruns import make_fake_runs


def completed(runs_dir, n=4, seed=7):
    ids = make_fake_runs(runs_dir, n, seed=seed, n_test=200)
    return [i for i in ids if runs.load_run(i, runs_dir).status == "completed"]


def test_compare_two_runs_prints_the_verdict_and_the_table(runs_dir, capsys):
    a, b = completed(runs_dir)[:2]
    assert main(["--runs-dir", str(runs_dir), "compare", a, b]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert " is better than " in first and "95% interval" in first
    assert first.endswith(")") and ("real" in first or "within noise" in first)
    assert a in out and b in out and "ECE" in out and "200 test images" in out


def test_compare_json_matches_the_saved_bits(runs_dir, capsys):
    ids = completed(runs_dir, n=5, seed=3)[:3]
    assert main(["--runs-dir", str(runs_dir), "compare", *ids, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["runs"]) == 3 and len(data["tests"]) == 2
    for run in data["runs"]:
        s = runs.load_run(run["id"], runs_dir).summary
        assert run["test_accuracy"] == np.mean(unpack_correct(s["test_correct_bits"], s["test_n"]))
    assert all(t["p_adjusted"] >= t["p_value"] for t in data["tests"])


def test_compare_refuses_with_a_message_not_a_traceback(runs_dir, capsys):
    (a,) = completed(runs_dir, n=1, seed=1)[:1] or completed(runs_dir, n=3, seed=2)[:1]
    assert main(["--runs-dir", str(runs_dir), "compare", a]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "at least two" in err and "Traceback" not in err
    assert main(["--runs-dir", str(runs_dir), "compare", a, "no-such-run"]) == 2
    assert "no-such-run" in capsys.readouterr().err
