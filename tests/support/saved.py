"""Saved runs for tests that need a model to read with, without training one."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path

from mnist_core import runs
from mnist_core.config import RunConfig
from mnist_core.models import build_model
from tests.support.fakeruns import make_fake_runs


def untrained_run(runs_dir: Path, cfg: RunConfig, name: str, test_accuracy: float = 0.5) -> str:
    """A completed run whose weights are ``cfg``'s untrained model; its id.

    ``test_accuracy`` only orders the runs (the Draw page picks the best).
    """
    writer = runs.RunWriter.create(cfg, runs_dir, name=name)
    runs.write_torch(writer.path / "weights.pt", build_model(cfg).state_dict())
    writer.finish("completed", {"test_accuracy": test_accuracy})
    return writer.id


def trained_runs(folder: Path, data_root: Path, configs: Mapping[str, RunConfig]) -> Path:
    """``folder`` with one run trained on ``data_root`` per config (name -> config), for :func:`copy_runs`."""
    from mnist_core.pipeline import run_training

    for name, cfg in configs.items():
        run_training(cfg, runs_dir=folder, data_root=data_root, name=name)
    return folder


def copy_runs(source: Path, runs_dir: Path) -> list[runs.RunInfo]:
    """Every run folder in ``source`` copied into ``runs_dir`` (trained once, copied per test); its runs."""
    for run in source.iterdir():
        if run.is_dir() and not run.name.startswith("."):
            shutil.copytree(run, runs_dir / run.name)
    return runs.list_runs(runs_dir)


def completed_fake_runs(runs_dir: Path, n: int, seed: int, n_test: int) -> list[str]:
    """The completed ones of ``n`` generated runs with (untrained, at most 64 wide) weights, oldest first."""
    ids = make_fake_runs(runs_dir, n, seed=seed, n_test=n_test, weights=True, max_width=64)
    return [r.id for r in runs.list_runs(runs_dir) if r.id in ids and r.status == "completed"]


def variant_of(runs_dir: Path, run_id: str, suffix: str, *, name: str, config: Mapping[str, object],
               summary: Mapping[str, object]) -> str:
    """A copy of ``run_id`` (new id ``<run_id>-<suffix>``) with ``name`` and some config and summary values
    changed: another seed, another batch size, another accuracy, without training. Its id."""
    copy = f"{run_id}-{suffix}"
    shutil.copytree(runs_dir / run_id, runs_dir / copy)
    folder = runs_dir / copy
    for file, changes in (("run.json", {"id": copy, "name": name}), ("config.json", config),
                          ("summary.json", summary)):  # fmt: skip
        runs.write_json(folder / file, json.loads((folder / file).read_text()) | dict(changes))
    return copy


def zip_of(files: Mapping[str, bytes]) -> bytes:
    """A zip holding ``files`` (name -> content) as given, for the import's tests (names may be hostile)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()
