"""Fault injection for the reliability tests (not a test module): a disk that fills up.

``DiskFull`` replaces ``os.replace`` (the last step of every atomic write in
``mnist_core.fsutil``): writes succeed until it is armed, then the files it
is told about fail with the error it is given, as a full disk or a
read-only folder would. It arms itself once a run's first checkpoint is
completely saved (``history.json`` is the last file a checkpoint writes) and
keeps what that checkpoint held, to compare with what is on disk afterwards.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

_REAL_REPLACE = os.replace


def no_space() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


def no_permission() -> OSError:
    return PermissionError(errno.EACCES, "Permission denied")


class DiskFull:
    """A stand-in for ``os.replace`` that fails once armed.

    ``names``: the file names that fail (None: every file). ``arm_after``: how
    many complete checkpoints (``history.json`` writes of a run) succeed first.
    """

    def __init__(
        self,
        names: set[str] | None = None,
        arm_after: int | None = 1,
        error: Callable[[], OSError] = no_space,
    ) -> None:
        self.names, self.arm_after, self.error = names, arm_after, error
        self.armed = arm_after == 0
        self.failures = 0
        self.kept: dict[str, Any] = {}  # file name -> what torch.load gave when armed
        self._histories = 0
        self._lock = threading.Lock()

    def disarm(self) -> None:
        """The disk has room again."""
        with self._lock:
            self.armed = False
            self.arm_after = None

    def __call__(self, src: Any, dst: Any, **kwargs: Any) -> None:
        path = Path(os.fsdecode(dst))
        with self._lock:
            if self.armed and (self.names is None or path.name in self.names):
                self.failures += 1
                raise self.error()
        _REAL_REPLACE(src, dst, **kwargs)
        if path.name == "history.json" and (path.parent / "checkpoint.pt").exists():
            with self._lock:
                self._histories += 1
                if self.arm_after is not None and self._histories >= self.arm_after and not self.armed:
                    self.kept = {
                        name: torch.load(path.parent / name, weights_only=True)
                        for name in ("checkpoint.pt", "weights.pt")
                    }
                    self.armed = True


def same_tensors(a: Any, b: Any) -> bool:
    """Deep equality of the plain containers of tensors that checkpoints hold."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_tensors(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(same_tensors, a, b))
    return a == b


# -- a disk that fills up in the middle of a file -------------------------------------------


class _FillingFile:
    """A writable file whose ``write`` raises ENOSPC once the disk's byte budget is spent."""

    def __init__(self, f: Any, disk: FullDiskWrites) -> None:
        self._f, self._disk = f, disk

    def write(self, data: Any) -> int:
        self._disk.spend(len(memoryview(data).cast("B")))
        return self._f.write(data)

    def __enter__(self) -> _FillingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


class FullDiskWrites:
    """Writes fail with ENOSPC after ``budget`` bytes (None: at once) to the files named ``names``.

    Unlike :class:`DiskFull` (which fails the final rename), the failure comes
    in the middle of writing a file, as on a real full disk: inside
    ``torch.save`` for a ``.pt``, inside the unpacking of an import. It wraps
    the files opened by ``mnist_core.fsutil.atomic_write`` (``os.fdopen``) and
    by the import (``open`` in ``mnist_core.archive``).
    """

    def __init__(self, budget: int | None = 0, names: set[str] | None = None) -> None:
        self.budget, self.names = budget, names
        self.failures = 0
        self._written = 0
        self._lock = threading.Lock()

    def spend(self, n: int) -> None:
        with self._lock:
            if self.budget is None or self._written + n > self.budget:
                self.failures += 1
                raise no_space()
            self._written += n

    def _concerns(self, name: str) -> bool:
        # atomic_write's temp files are named ".<name>.<random>.tmp"
        return self.names is None or any(name == n or name.startswith(f".{n}.") for n in self.names)

    def install(self, monkeypatch: Any) -> FullDiskWrites:
        import builtins

        from mnist_core import archive

        real_fdopen = os.fdopen

        def fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            f = real_fdopen(fd, mode, *args, **kwargs)
            name = Path(os.readlink(f"/proc/self/fd/{fd}")).name if "w" in mode else ""
            return _FillingFile(f, self) if "w" in mode and self._concerns(name) else f

        def archive_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            f = builtins.open(path, mode, *args, **kwargs)
            writing = any(c in mode for c in "wxa")
            return _FillingFile(f, self) if writing and self._concerns(Path(path).name) else f

        monkeypatch.setattr(os, "fdopen", fdopen)
        monkeypatch.setattr(archive, "open", archive_open, raising=False)
        return self


# -- kill windows: SIGKILL before every file-system step of an operation ---------------------
# ``python faults.py kill-sweep|kill-random OP ROOT ARG OUT`` runs in its own process (forking
# children is safe there: one thread, one torch thread). An audit hook counts the child's
# file-system steps under ROOT (open, mkdir, rename, replace, remove, rmtree, flock); the child
# stops itself just before step k, while the sweeper checks that a cleanup spares the live
# child's staging folder, then SIGKILLs it. k runs over every step of the operation.

_STEP_EVENTS = frozenset({
    "open", "os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "shutil.rmtree", "fcntl.flock",
})
_hook: dict[str, Any] = {"root": "", "target": None, "count": 0, "pipe": -1}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    h = _hook
    if h["target"] is None or event not in _STEP_EVENTS:
        return
    name = ""
    if event != "fcntl.flock":
        try:
            path = os.fsdecode(os.fspath(args[0]))
        except TypeError:  # a file descriptor
            return
        if not path.startswith(h["root"]):
            return
        name = path[len(h["root"]):].lstrip("/")
    h["count"] += 1
    if h["count"] == h["target"]:
        os.write(h["pipe"], f"{event} {name}\n".encode())
        os.kill(os.getpid(), __import__("signal").SIGSTOP)  # frozen just before the step


def _action(op: str, root: Path, arg: str) -> Callable[[], Any]:
    from mnist_core import archive, runs
    from mnist_core.config import RunConfig

    if op == "create":
        cfg = RunConfig(hidden=(16,), epochs=1)
        summary = {"test_accuracy": 0.5}
        return lambda: runs.RunWriter.create(cfg, root, name="killed?").finish("completed", summary)
    if op == "version":
        model, _cfg = runs.load_model(arg, root)
        state = {k: v + 1.0 for k, v in model.state_dict().items()}
        return lambda: runs.save_version(arg, state, {"test_accuracy": 0.5}, root, kind="correction")
    if op == "import":
        data = Path(arg).read_bytes()
        return lambda: archive.import_run(data, root)
    raise ValueError(op)


def _read_line(fd: int) -> str:
    out = b""
    while not out.endswith(b"\n"):
        chunk = os.read(fd, 256)
        if not chunk:
            break
        out += chunk
    return out.decode().strip()


def _child(action: Callable[[], Any], target: int | None) -> tuple[int, int]:
    """Fork a child that runs ``action`` and stops before step ``target``; returns (pid, read end)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(r)
        _hook.update(target=target if target is not None else 1 << 62, count=0, pipe=w)
        code = 0
        try:
            action()
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        _hook["target"] = None
        os.write(w, f"done {_hook['count']}\n".encode())
        os._exit(code)
    os.close(w)
    return pid, r


def kill_sweep(op: str, root: Path, arg: str) -> dict[str, Any]:
    """Kill ``op`` before each of its steps in turn; what each kill hit and what cleanups removed."""
    from mnist_core import runs

    action = _action(op, root, arg)
    pid, r = _child(action, None)  # a whole run, to count the steps
    line = _read_line(r)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if not line.startswith("done") or status != 0:
        raise RuntimeError(f"{op} failed without any kill: {line!r}")
    steps = int(line.split()[1])
    kills = []
    for k in range(1, steps + 1):
        pid, r = _child(action, k)
        line = _read_line(r)
        os.close(r)
        if line.startswith("done"):  # fewer steps this time (an id collision...): nothing to kill
            os.waitpid(pid, 0)
            continue
        event, _, name = line.partition(" ")
        clean = getattr(runs, "clean_stale_staging", None)  # (absent before issue 29)
        removed = clean(root) if clean else []  # the child is alive, frozen mid-operation
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        kills.append({"step": k, "event": event, "path": name, "pid": pid, "removed_while_alive": removed})
    return {"steps": steps, "kills": kills}


def _forever(op: str, root: Path, arg: str) -> Callable[[], None]:
    """A child's body for the kill loops: ``op`` again and again until it is killed."""
    action = _action(op, root, arg)

    def forever() -> None:
        while True:
            action()

    return forever


def kill_random(op: str, root: Path, arg: str, n: int, seed: int = 0) -> dict[str, Any]:
    """Run ``op`` in a loop in a child and SIGKILL it at a random moment, ``n`` times.

    Each time the sweeper waits until the child has made something new in
    ``root`` (a condition, not a delay), then lets it run a random number of
    its steps (0-40, seeded) and kills it there, wherever that falls.
    """
    import random

    rng = random.Random(seed)
    forever = _forever(op, root, arg)
    kills = []
    for _ in range(n):
        target = rng.randrange(1, 200)  # its first operations take ~20-60 steps: many land mid-op
        pid, r = _child(forever, target)
        line = _read_line(r)
        os.close(r)
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        event, _, name = line.partition(" ")
        kills.append({"step": target, "event": event, "path": name, "pid": pid})
    return {"kills": kills}


def kill_on_appear(op: str, root: Path, arg: str, n: int) -> dict[str, Any]:
    """The issue's window: SIGKILL a child that loops ``op`` as soon as a new run folder is listed.

    The sweeper polls the listing (a condition) and kills within microseconds
    of the folder's appearance, ``n`` times.
    """
    forever = _forever(op, root, arg)
    kills = []
    for _ in range(n):
        before = {e for e in os.listdir(root) if not e.startswith(".")}
        pid, r = _child(forever, None)
        new: set[str] = set()
        while not new:
            new = {e for e in os.listdir(root) if not e.startswith(".")} - before
            if not new and os.waitpid(pid, os.WNOHANG)[0]:  # the child died on its own: a bug
                raise RuntimeError(f"{op} failed in a loop: {_read_line(r)!r}")
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(r)
        kills.append({"pid": pid, "appeared": sorted(new)})
    return {"kills": kills}


def main(argv: list[str]) -> None:
    import json
    import sys

    mode, op, root, arg, out = argv[:5]
    torch.set_num_threads(1)
    sys.addaudithook(_audit)
    _hook["root"] = root
    if mode == "kill-sweep":
        result = kill_sweep(op, Path(root), arg)
    elif mode == "kill-random":
        result = kill_random(op, Path(root), arg, int(argv[5]), int(argv[6]))
    else:
        result = kill_on_appear(op, Path(root), arg, int(argv[5]))
    Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
