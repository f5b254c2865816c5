"""Writing a run while it trains: :class:`RunWriter` holds the run's lock and writes its files."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..config import RunConfig
from ..errors import MnistLabError, RunFolderMissing
from .catalog import RESUMABLE, load_run, resumable
from .fileio import storage_error, write_json, write_torch
from .locks import fcntl, modify_meta, take_lock
from .paths import now_iso, runs_root
from .staging import drop_staging, fill, new_staging, publish
from .state import TrainState


class RunWriter:
    """The owner of a run being trained: holds its lock, writes its files."""

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path, self.meta = path, meta  # meta: what this writer wrote last
        self._lock: IO[bytes] | None = None

    @property
    def id(self) -> str:
        return self.path.name

    @classmethod
    def create(
        cls,
        cfg: RunConfig,
        runs_dir: str | os.PathLike[str] | None = None,
        name: str | None = None,
        parent: str | None = None,
        tags: tuple[str, ...] = (),
    ) -> RunWriter:
        """Make a new run folder with its config, status "running", locked by this writer.

        The folder is filled under a hidden staging name and published with
        one rename, lock already held: a crash at any moment leaves either no
        run or a whole one (listed "interrupted" once its process is gone).
        """
        root = runs_root(runs_dir)
        now = now_iso()
        meta = {
            "id": None, "name": name or cfg.label(), "status": "running", "created": now,
            "updated": now, "parent": parent, "tags": list(tags), "notes": "", "error": None,
        }
        staging, lock = new_staging(root)
        try:
            fill(staging, {"config.json": cfg.to_dict(), "run.json": meta}, f"a new run in {root}")
            run_id, meta = publish(staging, cfg, root)
        except BaseException:
            drop_staging(staging, lock)
            raise
        writer = cls(root / run_id, meta)
        writer._lock = lock  # the lock travelled with the folder
        return writer

    @classmethod
    def reopen(cls, run_id: str, runs_dir: str | os.PathLike[str] | None = None) -> RunWriter:
        """Take over a stopped, interrupted or failed run to resume it."""
        info = load_run(run_id, runs_dir)
        if info.status not in RESUMABLE:
            raise MnistLabError(f"Run {run_id} is {info.status}; only {', '.join(RESUMABLE)} runs resume.")
        if not resumable(info):
            raise MnistLabError(
                f"Run {run_id} is an unfinished saved version of run {info.meta.get('parent')}: its process "
                "stopped before its weights were written, so there is nothing to resume (training it would "
                "start from a fresh model). Delete it; the run it came from is unchanged."
            )
        writer = cls(info.path, dict(info.meta))
        writer._acquire()
        writer.set_status("running", error=None)
        return writer

    def _acquire(self) -> None:
        try:
            self._lock = take_lock(self.path)
        except OSError as exc:
            raise self.folder_missing(exc) or storage_error(f"Could not lock run {self.id}", exc) from exc
        if self._lock is None and fcntl is not None:
            raise MnistLabError(f"Run {self.id} is being trained by another process.")

    def discard(self) -> None:
        """Remove the run's folder (a run whose first files could not be written)."""
        self.release()
        shutil.rmtree(self.path, ignore_errors=True)

    def folder_missing(self, exc: BaseException) -> RunFolderMissing | None:
        """The error to raise instead of ``exc`` when it failed because the run's folder is gone."""
        if not isinstance(exc, OSError) or self.path.is_dir():
            return None
        return RunFolderMissing(
            f"The folder of run {self.id} ({self.path}) was deleted or moved while the run was being "
            "written, so its progress cannot be saved. Start the run again, or put the folder back "
            "and resume it."
        )

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            missing = self.folder_missing(exc)
            if missing is not None:
                raise missing from exc
            if isinstance(exc, MnistLabError):
                raise
            raise storage_error(f"Could not update run {self.id}", exc) from exc

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing drops the flock
            self._lock = None

    def set_status(self, status: str, error: str | None = None) -> None:
        """Change status and error only: a rename or note made meanwhile is kept."""
        with self._writing():
            self.meta = modify_meta(self.path, {"status": status, "error": error})

    def save_checkpoint(self, state: TrainState) -> None:
        """Resumable state first, then the inference weights, then the history."""
        # The history travels inside the checkpoint too: a crash between the renames
        # below cannot leave a resumable state whose curve misses an epoch.
        checkpoint = {
            "epoch": state.epoch, "step_in_epoch": state.step_in_epoch, "model": state.model,
            "optimizer": state.optimizer, "scheduler": state.scheduler, "elapsed_s": state.elapsed_s,
            "history": state.history,
        }
        with self._writing():
            write_torch(self.path / "checkpoint.pt", checkpoint)
            write_torch(self.path / "weights.pt", state.model)
            write_json(self.path / "history.json", state.history)

    def finish(self, status: str, summary: dict[str, Any] | None = None, error: str | None = None) -> None:
        """Write the summary (if any) and the final status, then drop the lock."""
        try:
            if summary is not None:
                with self._writing():
                    write_json(self.path / "summary.json", summary)
            self.set_status(status, error)
        finally:
            self.release()
