"""The memory of corrected drawings: known answers, every reading path consults it, saved and loaded."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from mnist_core import allmodels, memory, online, runs, teach
from mnist_core.config import RunConfig
from mnist_core.errors import CorruptRun
from mnist_core.infer import predict, predict_batch
from mnist_core.metrics import evaluate
from mnist_core.models import build_model


def images(*values: float) -> torch.Tensor:
    """Flat test images ``(N, 1, 28, 28)``, every pixel of image i equal to ``values[i]``."""
    return torch.tensor(values, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 28, 28).clone()


class Constant(nn.Module):
    """Logits that always say class 0 (probability ~1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], 10)
        out[:, 0] = 20.0
        return out


def test_radius_is_reach_times_the_distance_to_the_nearest_other_class() -> None:
    train_x, train_y = images(0.0, 1.0, 3.0), torch.tensor([7, 1, 2])
    mem = memory.remember(images(0.0), torch.tensor([7]), train_x, train_y, reach=0.5)
    # The key (all 0) is 28 from the all-1 image (class 1), 84 from class 2; class 7 itself does not count.
    assert mem.radius.tolist() == pytest.approx([0.5 * 28.0])
    assert mem.labels.tolist() == [7] and tuple(mem.keys.shape) == (1, 784)


def test_an_input_near_a_key_is_read_as_its_label_and_a_far_one_is_not() -> None:
    mem = memory.Memory(images(0.0).view(1, -1), torch.tensor([7]), torch.tensor([10.0]))
    x = images(0.0, 0.3, 0.5, 2.0)  # distances 0, 8.4, 14, 56: the first two within the radius of 10
    assert mem.nearest(x).tolist() == [0, 0, -1, -1]
    model = memory.attach(Constant().eval(), mem)
    probs = predict_batch(model, x)
    assert probs[:2, 7].tolist() == pytest.approx([memory.CONFIDENCE] * 2)
    assert probs[:2].argmax(1).tolist() == [7, 7]
    assert probs[2:, 0].min() > 0.99  # not remembered: the network alone


def test_the_nearest_key_within_its_radius_decides_and_a_confident_right_answer_is_kept() -> None:
    keys = torch.cat([images(0.0), images(1.0)]).view(2, -1)
    mem = memory.Memory(keys, torch.tensor([3, 0]), torch.tensor([30.0, 30.0]))
    logits = torch.zeros(2, 10)
    logits[:, 0] = 20.0
    out = mem.apply(images(0.1, 0.9), logits)
    assert out.argmax(1).tolist() == [3, 0]
    assert torch.equal(out[1], logits[1])  # already read as 0, far above 0.9: never lowered
    assert math.isclose(float(torch.softmax(out[0], 0)[3]), memory.CONFIDENCE, rel_tol=1e-5)


def test_gradients_flow_through_a_remembered_input() -> None:
    """The Draw page's saliency map takes input gradients of the model's output, memory included."""
    mem = memory.Memory(images(0.0).view(1, -1), torch.tensor([7]), torch.tensor([10.0]))
    model = memory.attach(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).eval(), mem)
    x = images(0.1).requires_grad_(True)
    torch.log_softmax(model(x), 1)[0, 7].backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_an_empty_memory_changes_nothing_and_attach_replaces_the_memory() -> None:
    model = Constant().eval()
    assert memory.memory_of(model) is None
    first = memory.Memory(images(0.0).view(1, -1), torch.tensor([7]), torch.tensor([10.0]))
    second = memory.Memory(images(0.0).view(1, -1), torch.tensor([4]), torch.tensor([10.0]))
    memory.attach(model, first)
    memory.attach(model, second)
    assert memory.memory_of(model) is second and len(model._forward_hooks) == 1
    assert int(predict(model, images(0.0)).label) == 4
    memory.detach(model)
    assert memory.memory_of(model) is None and int(predict(model, images(0.0)).label) == 0
    assert memory.merged(None, first) is first and len(memory.merged(first, second)) == 2


def test_evaluate_reads_with_the_memory_on_the_cnn_fast_path() -> None:
    """metrics.evaluate runs a CNN through models.for_inference (a new module): the memory comes along."""
    cnn = build_model(RunConfig(model="cnn", cnn_channels=(4, 8), hidden=(16,))).eval()
    x = torch.randn(6, 1, 28, 28)
    plain = torch.tensor(evaluate(cnn, x, torch.zeros(6, dtype=torch.int64)).predictions)
    wrong = int((plain[0] + 1) % 10)
    memory.attach(cnn, memory.Memory(x[:1].reshape(1, -1), torch.tensor([wrong]), torch.tensor([1e-3])))
    after = evaluate(cnn, x, torch.full((6,), wrong, dtype=torch.int64))
    assert after.predictions[0] == wrong and list(after.predictions[1:]) == plain[1:].tolist()


def test_a_bad_memory_file_is_a_corrupt_run() -> None:
    good = {"keys": torch.zeros(2, 784), "labels": torch.tensor([1, 2]), "radius": torch.ones(2)}
    assert len(memory.from_state(good, "memory.pt")) == 2
    for bad in (
        [1, 2], {"keys": torch.zeros(2, 784)}, good | {"labels": torch.tensor([1, 12])},
        good | {"radius": torch.tensor([1.0, math.nan])}, good | {"keys": torch.zeros(2, 10)},
        good | {"labels": torch.tensor([1.0, 2.0])},
    ):  # fmt: skip
        with pytest.raises(CorruptRun, match=r"memory\.pt"):
            memory.from_state(bad, "memory.pt")


# -- saved with a version, loaded by every reader -----------------------------------------------

MEMORY_ONLY = online.CorrectionSettings(views=4)  # the default: no fine-tuning, the memory alone
# ``parent``: the tiny run trained once (tests/unit/conftest.py), copied into this test's runs_dir.


def test_a_correction_remembers_and_every_reader_of_the_saved_version_uses_it(
    parent: runs.RunInfo, runs_dir: Path
) -> None:
    from mnist_core.data import load_data

    x = load_data().test.tensors()[0][:1]
    model, _ = runs.load_model(parent.id, runs_dir)
    assert memory.memory_of(model) is None  # a run without memory.pt loads as before
    label = (int(predict(model, x).label) + 1) % 10
    taught = teach.correct(parent, x, label, MEMORY_ONLY)
    assert taught.correction.steps == 0 and taught.details["remembered"] == 5  # the drawing and 4 views
    assert taught.correction.learned and taught.details["predicted_after"] == label
    # The file holds plain tensors (weights_only) and the loaded version reads with it everywhere.
    state = torch.load(taught.version.path / memory.MEMORY_FILE, weights_only=True)
    assert torch.equal(state["keys"][0], x.reshape(-1)) and state["labels"].tolist() == [label] * 5
    loaded, _ = runs.load_model(taught.version.id, runs_dir)
    assert predict(loaded, x).label == label
    (reading,) = [r for r in allmodels.read_with_every_run(x, [taught.version], "mnist") if r.prediction]
    assert reading.prediction.label == label
    assert memory.memory_of(runs.load_model(parent.id, runs_dir)[0]) is None  # the parent is untouched
    # A version of the version keeps both memories.
    again = teach.correct(taught.version, load_data().test.tensors()[0][1:2], 3, MEMORY_ONLY)
    assert again.details["remembered"] == 10


def test_a_corrupt_memory_file_is_refused_with_a_message(parent: runs.RunInfo, runs_dir: Path) -> None:
    from mnist_core.data import load_data

    taught = teach.correct(parent, load_data().test.tensors()[0][:1], 3, MEMORY_ONLY)
    torch.save({"keys": torch.zeros(1, 5)}, taught.version.path / memory.MEMORY_FILE)
    with pytest.raises(CorruptRun, match="memory"):
        runs.load_model(taught.version.id, runs_dir)


def test_an_exported_version_keeps_its_memory_when_imported(parent: runs.RunInfo, runs_dir: Path) -> None:
    import io
    import zipfile

    from mnist_core import archive
    from mnist_core.data import load_data

    x = load_data().test.tensors()[0][:1]
    label = (int(predict(runs.load_model(parent.id, runs_dir)[0], x).label) + 1) % 10
    taught = teach.correct(parent, x, label, MEMORY_ONLY)
    imported = archive.import_run(archive.export_run(taught.version.id, runs_dir), runs_dir)
    model, _ = runs.load_model(imported.id, runs_dir)
    assert len(memory.memory_of(model)) == 5 and predict(model, x).label == label
    # A zip whose memory.pt is not a memory is refused, naming the file.
    good = zipfile.ZipFile(io.BytesIO(archive.export_run(taught.version.id, runs_dir)))
    wrong = io.BytesIO()
    torch.save({"keys": torch.zeros(1, 5)}, wrong)
    bad = io.BytesIO()
    with zipfile.ZipFile(bad, "w") as zf:
        for name in good.namelist():
            zf.writestr(name, wrong.getvalue() if name == memory.MEMORY_FILE else good.read(name))
    with pytest.raises(archive.ArchiveError, match=r"memory\.pt"):
        archive.import_run(bad.getvalue(), runs_dir)


def test_cli_teach_remembers_by_default_and_can_fine_tune_without_memory(
    parent: runs.RunInfo, runs_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    import numpy as np
    from PIL import Image

    from mnist_core.cli import main
    from tests.support.synthetic import render_digit

    image = tmp_path / "seven.png"
    Image.fromarray(render_digit(7, np.random.default_rng(0))).save(image)
    args = ["--runs-dir", str(runs_dir), "teach", parent.id, str(image), "--label", "2"]
    assert main([*args, "--views", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["remembered"] == 5 and out["steps_taken"] == 0 and out["predicted_after"] == 2
    assert out["settings"]["memory"] is True
    assert main([*args, "--no-memory", "--steps", "2", "--stop-at", "1.0", "--views", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["remembered"] == 0 and out["steps_taken"] == 2 and out["settings"]["memory"] is False
    assert not (runs_dir / out["version"] / memory.MEMORY_FILE).exists()
