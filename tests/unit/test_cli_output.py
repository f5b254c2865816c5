"""What the CLI prints: help text, errors about image files, the runs table, the progress lines."""

from __future__ import annotations

import io
import json
import re
import shutil

import pytest

from mnist_core import runs
from mnist_core.cli import _ProgressBar, main
from mnist_core.train import ProgressEvent
from tests.support.fakeruns import corrupt_run, make_fake_runs

SUBCOMMANDS = ([], ["train"], ["evaluate"], ["predict"], ["runs"], ["sweep"], ["study"])


@pytest.mark.parametrize("sub", SUBCOMMANDS, ids=lambda s: " ".join(s) or "top")
def test_help_shows_no_rest_markup(sub, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*sub, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: python -m mnist_core" in out
    assert "``" not in out and not re.search(r":(func|class|mod|data):`", out), out


@pytest.fixture
def saved_run(runs_dir):
    """A completed run with (untrained) weights to predict with."""
    ids = make_fake_runs(runs_dir, 6, seed=3, n_test=200, weights=True, max_width=64)
    return next(r.id for r in runs.list_runs(runs_dir) if r.id in ids and r.status == "completed")


def test_predict_reports_bad_files_by_name_not_as_an_upload(runs_dir, saved_run, tmp_path, capsys):
    garbage, empty, missing = tmp_path / "notes.png", tmp_path / "empty.png", tmp_path / "nowhere.png"
    garbage.write_bytes(b"this is not an image at all" * 10)
    empty.write_bytes(b"")
    code = main(["--runs-dir", str(runs_dir), "predict", saved_run, str(garbage), str(empty), str(missing)])
    assert code == 1
    results = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in results] == [str(garbage), str(empty), str(missing)]
    for r, name in zip(results, ("notes.png", "empty.png", "nowhere.png"), strict=True):
        error = r["error"]
        assert "upload" not in error.lower(), error  # the web page's wording
        assert name in error, error  # which file it was


def test_runs_columns_stay_aligned_with_long_ids(runs_dir, capsys):
    make_fake_runs(runs_dir, 3, seed=1, n_test=200)
    short = runs.list_runs(runs_dir)[0]
    long_id = short.id + "-a-version-id-much-longer-than-the-usual-thirty-six-characters"
    shutil.copytree(short.path, runs_dir / long_id)
    meta = json.loads((runs_dir / long_id / "run.json").read_text())
    (runs_dir / long_id / "run.json").write_text(json.dumps(meta | {"id": long_id}))
    corrupt_run(runs_dir, "20260101-000000-mlp-broken-with-a-rather-long-folder-name-000000")
    assert main(["--runs-dir", str(runs_dir), "runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header, rows = lines[0], lines[1:]
    assert any(long_id in row for row in rows)
    status_at = header.index("status")
    for row in rows:
        run_id = row.split()[0]
        assert row[status_at - 1] == " " and row[status_at] != " ", (header, row)
        assert row.startswith(run_id + " ")
    # the figures end where their headers end
    acc_end = header.index("test acc") + len("test acc")
    for row in rows:
        if " broken " not in row:
            assert row[acc_end - 1] != " " and row[acc_end] == " ", (header, row)


def _event(kind: str, step: int, loss: float, acc: float, val_acc: float | None = None) -> ProgressEvent:
    return ProgressEvent(
        kind=kind, epoch=1, epochs=1, step=step, total_steps=422, samples=step * 128, loss=loss,
        train_acc=acc, lr=1e-3, elapsed_s=10.0, samples_per_s=5000.0, eta_s=0.0, val_acc=val_acc,
        val_loss=None if val_acc is None else 0.06,
    )  # fmt: skip


def test_the_end_of_epoch_line_says_its_figures_are_the_epoch_means():
    """The last line of `train --quick` showed the epoch's mean loss as if it were the latest one."""
    out = io.StringIO()
    bar = _ProgressBar(out)
    bar(_event("step", 422, 0.0495, 0.9833))
    bar(_event("epoch", 422, 0.2330, 0.9377, val_acc=0.983))
    step_line, epoch_line = out.getvalue().split("\r")[1:]
    assert "loss 0.0495" in step_line
    assert "mean over the epoch" in epoch_line and "loss 0.2330" in epoch_line
    assert "validation" in epoch_line and "98.30%" in epoch_line
    assert epoch_line.endswith("\n")


def test_predict_refuses_a_tap_and_warns_when_unsure(runs_dir, saved_run, tmp_path, capsys):
    """A dot is refused with the not-a-digit message; an untrained model's readings are unsure."""
    import numpy as np
    from PIL import Image, ImageDraw

    tap, seven = tmp_path / "tap.png", tmp_path / "seven.png"
    image = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(image).ellipse((130, 130, 150, 150), fill=0)
    image.save(tap)
    image = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(image).line([(90, 40), (200, 40), (120, 245)], fill=0, width=18)
    image.save(seven)
    assert main(["--runs-dir", str(runs_dir), "predict", saved_run, str(tap), str(seven)]) == 1
    refused, read = json.loads(capsys.readouterr().out)
    assert refused["error"].startswith("This does not look like a digit: ")
    assert read["label"] in range(10) and np.isclose(sum(read["probabilities"]), 1.0, atol=1e-4)
    if read["confidence"] < 0.5:  # an untrained model is unsure of most inputs
        assert read["warning"].startswith("Low confidence (")
    else:
        assert "warning" not in read


def test_a_sweeps_progress_line_names_the_running_point_and_its_seed_once(runs_dir):
    """It read "Reproduce the study: MLP 784-128-10 bs64 seed 0 seed 0: epoch 1/2"."""
    from types import SimpleNamespace

    from mnist_core import study
    from mnist_core.cli.grid import progress_line
    from mnist_core.sweep_run import point_name

    sweep = study.create_sweep(["width"], runs_dir=runs_dir, repeats=2)
    cfg = sweep.configs[-1]
    snap = SimpleNamespace(label=point_name(sweep, cfg), epoch=1, epochs=2)
    line = progress_line(3, len(sweep.configs), snap)
    assert line == f"3/8 of this session | {cfg.label()} seed 1 (Reproduce the study): epoch 1/2"
    assert progress_line(0, 8, None) == "0/8 of this session"
