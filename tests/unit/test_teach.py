"""The Draw page's actions as core calls: teach a drawing, teach the handwriting set, read with every run."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mnist_core import allmodels, handwriting, infer, online, runs, teach
from mnist_core.handwriting import HandwritingError
from mnist_core.infer import predict_batch

FAST = online.CorrectionSettings(steps=15, lr=1e-3, replay_size=16, replay_weight=1.0)
# ``parent``: the tiny run trained once (tests/unit/conftest.py), copied into this test's runs_dir.


def a_drawing(info: runs.RunInfo) -> tuple[torch.Tensor, int, int]:
    """A test digit, what the run reads and a wrong label for it."""
    from mnist_core.data import load_data

    x = load_data().test.tensors()[0][:1]
    model, _ = runs.load_model(info.id, info.path.parent)
    predicted = int(predict_batch(model, x).argmax())
    return x, predicted, (predicted + 1) % 10


def test_correct_saves_a_named_version_and_keeps_the_drawing(parent: runs.RunInfo, runs_dir: Path) -> None:
    x, predicted, label = a_drawing(parent)
    pixels = np.full((28, 28), 0.5, np.float32)
    taught = teach.correct(parent, x, label, FAST, drawing=pixels, predicted=predicted)
    version = runs.load_run(taught.version.id, runs_dir)
    assert version.meta["parent"] == parent.id and version.meta["kind"] == "correction"
    assert version.name == f"tiny · v2 (taught {label})"
    assert version.meta["details"]["label"] == label and version.meta["details"]["what"] == f"taught {label}"
    assert taught.details == version.meta["details"] and taught.parent.id == parent.id
    assert version.summary["test_accuracy"] == taught.correction.after.accuracy
    kept = [(s.label, s.run_id, s.predicted) for s in handwriting.list_samples()]
    assert kept == [(label, parent.id, predicted)]
    # A correction of the correction: the name counts the lineage.
    again = teach.correct(version, x, label, FAST)
    assert again.version.name == f"tiny · v3 (taught {label})"
    assert len(handwriting.list_samples()) == 1  # no drawing given: nothing kept
    # A second correction of the original (a sibling of v2) is v4, not a second "v2".
    sibling = teach.correct(parent, x, predicted, FAST)
    assert sibling.version.name == f"tiny · v4 (taught {predicted})"
    assert sibling.details["version_number"] == 4


def test_undo_deletes_the_version_and_the_drawing_it_kept(parent: runs.RunInfo, runs_dir: Path) -> None:
    x, predicted, label = a_drawing(parent)
    taught = teach.correct(parent, x, label, FAST, drawing=np.full((28, 28), 0.5, np.float32),
                           predicted=predicted)  # fmt: skip
    assert taught.sample is not None and [s.id for s in handwriting.list_samples()] == [taught.sample.id]
    handwriting.add(np.full((28, 28), 0.25, np.float32), 3)  # another drawing: it stays
    teach.undo(taught.version.id, taught.sample.id, runs_dir)
    assert not (runs_dir / taught.version.id).exists()
    assert [s.label for s in handwriting.list_samples()] == [3]
    # A sample deleted by hand meanwhile is fine.
    again = teach.correct(parent, x, label, FAST, drawing=np.full((28, 28), 0.5, np.float32))
    assert again.sample is not None
    handwriting.delete(again.sample.id)
    teach.undo(again.version.id, again.sample.id, runs_dir)
    assert not (runs_dir / again.version.id).exists()


def test_correct_handwriting_teaches_the_whole_set(parent: runs.RunInfo, runs_dir: Path) -> None:
    with pytest.raises(HandwritingError, match="correct a few on the Draw page"):
        teach.correct_handwriting(parent, FAST)
    for label in (1, 7, 7):
        handwriting.add(np.random.default_rng(label).random((28, 28), dtype=np.float32), label)
    taught = teach.correct_handwriting(parent, dataclasses.replace(FAST, views=200))
    version = runs.load_run(taught.version.id, runs_dir)
    assert version.meta["kind"] == "handwriting" and version.meta["details"]["examples"] == 3
    assert version.meta["details"]["settings"]["views"] == teach.MAX_TAUGHT // 3 - 1  # capped
    assert version.name == "tiny · v2 (3 of my drawings)"


def test_read_with_every_run_keeps_a_run_that_cannot_read(parent: runs.RunInfo, runs_dir: Path) -> None:
    x, predicted, _ = a_drawing(parent)
    broken = runs_dir / "broken"
    shutil.copytree(parent.path, broken)
    (broken / "weights.pt").write_bytes(b"not weights")
    infos = runs.list_runs(runs_dir)
    readings = allmodels.read_with_every_run(x, infos, "mnist")
    by_id = {r.run.id: r for r in readings}
    assert by_id[parent.id].prediction is not None and by_id[parent.id].prediction.label == predicted
    assert by_id["broken"].prediction is None and by_id["broken"].error
    assert allmodels.read_with_every_run(x, infos, "fashion") == []  # other datasets are left out


def test_a_single_drawing_is_read_again_as_fresh_redrawings(parent: runs.RunInfo) -> None:
    x, _, label = a_drawing(parent)
    taught = teach.correct(parent, x, label, FAST)
    redrawn = taught.redrawn
    assert redrawn is not None and redrawn.pixels.shape == (teach.REDRAWINGS, 28, 28)
    assert redrawn.label == label and len(redrawn.before) == len(redrawn.after) == teach.REDRAWINGS
    assert taught.details["redrawn_right_after"] == sum(p == label for p in redrawn.after)
    assert taught.details["redrawn_right_before"] == redrawn.right_before
    assert not any(np.array_equal(view, redrawn.pixels[0]) for view in redrawn.pixels[1:])


def test_cli_teach_saves_a_version_and_prints_its_figures(
    parent: runs.RunInfo, runs_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from PIL import Image

    from mnist_core.cli import main
    from tests.support.synthetic import render_digit

    image = tmp_path / "seven.png"
    Image.fromarray(render_digit(7, np.random.default_rng(0))).save(image)
    code = main(["--runs-dir", str(runs_dir), "teach", parent.id, str(image), "--label", "2",
                 "--steps", "5", "--stop-at", "1.0", "--lr", "1e-3"])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    version = runs.load_run(out["version"], runs_dir)
    assert version.meta["parent"] == parent.id and out["label"] == 2 and out["steps_taken"] == 5
    assert out["settings"]["lr"] == 1e-3 and "accuracy_after" in out and "redrawn_right_after" in out
    assert [s.label for s in handwriting.list_samples()] == [2]
    # Read as the Draw page reads it (infer.read): the sample keeps what the parent said.
    model, _ = runs.load_model(parent.id, runs_dir)
    said = infer.read(model, image).prediction
    assert said is not None and handwriting.list_samples()[0].predicted == said.label
    # The whole handwriting set (the one drawing kept just now), then the errors a user can make.
    assert main(["--runs-dir", str(runs_dir), "teach", parent.id, "--handwriting", "--steps", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 1
    assert main(["--runs-dir", str(runs_dir), "teach", parent.id, str(image)]) == 2
    assert "--label" in capsys.readouterr().err
    assert main(["--runs-dir", str(runs_dir), "teach", parent.id, str(image), "--label", "12"]) == 2
    assert main(["--runs-dir", str(runs_dir), "teach", parent.id, "--handwriting", "--views", "-1"]) == 2
    assert "views" in capsys.readouterr().err


def test_baseline_is_the_parents_accuracy_that_correct_compares_with(parent: runs.RunInfo) -> None:
    """Issue 25: the parent's evaluation was loaded and computed in ui/draw_widgets; now the core's."""
    from mnist_core.data import load_data
    from mnist_core.metrics import evaluate

    model, _ = runs.load_model(parent.id, parent.path.parent)
    before = teach.baseline(parent, FAST.eval_size, model=model)
    x, y = online.eval_subset(load_data().test, FAST.eval_size)
    assert before.accuracy == evaluate(model, x, y).accuracy
    assert teach.baseline(parent, FAST.eval_size).accuracy == before.accuracy  # loads the model itself
    x1, _, label = a_drawing(parent)
    taught = teach.correct(parent, x1, label, FAST, model=model, before=before)
    assert taught.details["accuracy_before"] == before.accuracy
