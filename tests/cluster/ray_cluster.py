"""A real two-node Ray cluster on this machine, for the cluster tests (not a test module).

Each node is its own ``ray start`` (a head, then a worker that joins it), with
its own temp folder, ports and one CPU, so a sweep's trials spread over two
raylets exactly as on two machines. Everything a node starts carries its
temp folder in its command line, which is how :meth:`LocalCluster.kill_node`
and :meth:`LocalCluster.stop` find the processes to end: never by name (other
Ray instances on the machine are left alone). The driver is always a third
process (the CLI) or the test process, never a node's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
START_TIMEOUT_S = 240
# The head notices a dead node within ~3 s (default ~30 s): a killed node's trials are retried sooner.
FAST_FAILURE = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def node_env() -> dict[str, str]:
    """The environment of every node and driver: no usage report, no token (one machine, tests only)."""
    return {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", **FAST_FAILURE}


@dataclass
class LocalCluster:
    root: Path
    address: str = ""
    nodes: dict[str, Path] = field(default_factory=dict)  # "head"/"worker" -> its temp folder

    def start(self) -> LocalCluster:
        head = self._start_node("head", ["--head", "--port", str(free_ports(1)[0]),
                                         "--dashboard-port", str(free_ports(1)[0]),
                                         "--include-dashboard", "false"])
        self.address = head
        self._start_node("worker", ["--address", self.address])
        self.wait_nodes(2)
        return self

    def _start_node(self, name: str, extra: list[str]) -> str:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        ports = free_ports(7)
        args = [RAY, "start", *extra, "--num-cpus", "1", "--temp-dir", str(folder),
                "--disable-usage-stats", "--object-store-memory", "80000000",
                "--node-manager-port", str(ports[0]), "--object-manager-port", str(ports[1]),
                "--metrics-export-port", str(ports[2]), "--dashboard-agent-listen-port", str(ports[3]),
                "--dashboard-agent-grpc-port", str(ports[4]), "--runtime-env-agent-port", str(ports[5]),
                "--min-worker-port", "0", "--max-worker-port", "0"]
        self.nodes[name] = folder
        done = subprocess.run(args, env=node_env(), capture_output=True, text=True, timeout=START_TIMEOUT_S,
                              cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"ray start ({name}) failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        if name == "head":
            ip = next((line.split("'")[1] for line in (done.stdout + done.stderr).splitlines()
                       if "ray.init(_node_ip_address=" in line), "127.0.0.1")
            return f"{ip}:{extra[2]}"
        return self.address

    def alive_nodes(self) -> int:
        code = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False, logging_level='ERROR'); "
                "print(sum(n['Alive'] for n in ray.nodes()))")
        done = subprocess.run([sys.executable, "-c", code, self.address], env=node_env(), capture_output=True,
                              text=True, timeout=120)
        return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else -1

    def wait_nodes(self, n: int, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while (alive := self.alive_nodes()) != n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster has {alive} live nodes, not {n}")
            time.sleep(1)

    def pids(self, name: str | None = None) -> list[int]:
        """Processes of a node (every node: None): those with its temp folder in their arguments, and
        their descendants (Ray workers rename themselves ``ray::...``, but the raylet is their parent)."""
        folders = [str(self.nodes[name])] if name else [str(f) for f in self.nodes.values()]
        parents: dict[int, int] = {}
        found: set[int] = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if any(f + "/" in args or f + " " in args or args.rstrip().endswith(f) for f in folders):
                found.add(int(entry.name))
        grew = True
        while grew:
            more = {pid for pid, parent in parents.items() if parent in found} - found
            found |= more
            grew = bool(more)
        return sorted(found)

    def kill_node(self, name: str) -> list[int]:
        """SIGKILL every process of one node (its raylet, object store, agents and workers).

        Repeated until none is left (a dying raylet may still be starting a worker), at most ~10 s.
        """
        killed: list[int] = []
        for _ in range(100):
            pids = self.pids(name)
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            killed += pids
            time.sleep(0.1)
        return killed

    def stop(self) -> None:
        """End every node's processes: worker first, then the head; always called (fixture finaliser)."""
        for name in ("worker", "head"):
            if name in self.nodes:
                self.kill_node(name)
