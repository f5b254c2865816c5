"""The Train page's live view, measured as a user meets it: the app's own server and a real browser.

``scripts/live_view_overhead.py`` times the page's wiring in one process (the
callbacks, the snapshots, the figures). This script starts the app itself
(``streamlit run app.py``, with the repository's ``.streamlit/config.toml``)
and trains the Train page's default run (MLP 784-512-10, batch 64; ``--epochs``, 2)
from headless Chromium on the same machine, in turns:

- ``unwatched``: click *Start training*, then leave the page: nothing redraws;
- ``watched``: stay on the Train page while the run trains: its live view
  fetches its new points and status twice a second (``ui/live_route.py``)
  and draws the chart, the progress bar and the metrics; the per-layer
  statistics likewise; no fragment reruns (``ws_msgs`` counts the messages
  on Streamlit's websocket while it trains: a fragment rerun is two or more);
- ``watched, 1 thread``: the same on a second server whose torch runs one
  thread (``OMP_NUM_THREADS=1``, what ``torch.set_num_threads(1)`` does), so
  the browser and the server's redraws have a core of their own.

(``--runner.postScriptGC true``, Streamlit's default, was compared here before:
2.8-2.9x slower watched; the repository turns it off.)

While a watched run trains, ``--trace-s`` seconds of a Chromium trace give the
browser main thread's busy time per redraw of the live chart
(``scripts/live_chart_redraw.py``'s measure: CPU time of the top-level tasks),
and per update of the view (one answer of the route: the status each time, the
chart when there are new points); ``view_js_ms_per_update`` is the part spent
in the view's own code (live_chart.js: status, chart and uPlot's drawing).

Per run: the training loop's wall time (``train_time_s`` of the run's summary),
the CPU seconds the browser's processes and the server used meanwhile, and
the browser's CPU in cores (its CPU seconds over the run's wall time:
``browser_cores``, which includes the page run the click starts; and
``watch_cores``, from the end of that page run to the end of the run, only
the live view: the target's figure). A Chromium trace costs the browser CPU
too: for ``watch_cores`` without it, ``--trace-s 0``.
Medians (min-max) over the repeats, the ratios to the unwatched run, and the
load average: on a loaded machine the absolute figures say little; the
targets (watched <= 1.10x, browser <= 0.15 cores, < 20 ms a redraw) are for a
quiet one.

    MNIST_DATA_DIR=../shared/data .venv/bin/python scripts/live_view_browser.py --repeats 5

Before and after a change: the script starts the app of the checkout it lives
in, so export the older commit and run its copy the same way::

    git archive ad39ca0 | tar -x -C /tmp/old   # /tmp/old must exist
    MNIST_DATA_DIR=../shared/data .venv/bin/python /tmp/old/scripts/live_view_browser.py --repeats 5

What a redraw costs the browser was mostly Streamlit's, not the chart's: each
fragment rerun re-renders the whole page's elements and sends every widget's
state (measured in issue 22: a fragment drawing only a progress bar costs
~13 ms of main thread on a near-empty page and ~35 ms on a page as full as
the Train page; the uPlot chart adds 2-5 ms). Hence the polled view: no
rerun while a job trains. ``busy_ms_per_redraw`` is all the main thread's busy
time over the trace (anything else the page did included) per redraw of the
chart; ``busy_ms_per_update`` the same per answer of the route;
``chart_js_ms_per_redraw`` the JS of both live charts (curves and per-layer
statistics) per redraw of the first. The progress bar has no CSS transition:
one of 0.3 s made the main thread draw ~18 frames per update (64 ms a redraw
instead of 11, measured here under load 4).

Needs the dev requirements (playwright) and Debian's ``/usr/bin/chromium``, as
the browser tests do. Without ``MNIST_DATA_DIR`` it trains on generated data.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psutil
from playwright.sync_api import Browser, Page, WebSocket, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support: generated data
sys.path.insert(0, str(ROOT / "tests" / "e2e"))  # the browser tests' server and Chromium

from app_server import CHROMIUM, CHROMIUM_ARGS, running_app  # noqa: E402
from live_chart_redraw import main_thread_tasks  # noqa: E402

RUN_TIMEOUT_S = 600
VARIANTS = ("unwatched", "watched", "watched, 1 thread")
TRACE_CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline"]
# The live charts on the page when tracing starts, kept: the run may end (and its charts go) meanwhile.
KEEP_CHARTS = "() => { window.__charts = [...document.querySelectorAll('.mnist-live-chart')]; }"
STATUS_TEXT = "() => document.querySelector('.mnist-live-progress-text')?.textContent"  # the progress bar's
# Redraws of the first (loss and accuracy) and ms all of them spent in their own JS (live_chart.js);
# the status element's updates (one per answer of the route) and ms (the whole answer, chart included).
CHARTS = """() => {
    const charts = [...new Set([...window.__charts, ...document.querySelectorAll('.mnist-live-chart')])];
    const status = document.querySelector('.mnist-live-status');
    return {redraws: Number(window.__charts[0].dataset.redraws),
            ms: charts.reduce((t, e) => t + Number(e.dataset.ms || 0), 0),
            updates: status ? Number(status.dataset.updates) : 0,
            view_ms: status ? Number(status.dataset.ms || 0) : 0};
}"""


def browser_cpu_s() -> float:
    """CPU seconds used so far by this script's Chromium (its processes only: other Chromiums on a shared
    machine are not counted)."""
    total = 0.0
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.name().startswith("chrom"):
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def process_cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def train_once(
    browser: Browser, url: str, pid: int, runs_dir: Path, watch: bool, trace_s: float = 0.0, epochs: int = 2
) -> dict[str, float]:
    """Start the Train page's default run from a browser tab; watch it or leave. Times of the run.

    Watched, with ``trace_s``: a Chromium trace of that many seconds once the
    live chart draws gives the main thread's busy ms per redraw.
    """
    before = {p.name for p in runs_dir.iterdir()} if runs_dir.exists() else set()
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    ws = {"msgs": 0, "counting": False}

    def count(_payload: object) -> None:
        ws["msgs"] += ws["counting"]

    def watch_socket(socket: WebSocket) -> None:
        socket.on("framereceived", count)
        socket.on("framesent", count)

    page.on("websocket", watch_socket)
    try:
        page.goto(f"{url}/train")
        start = page.get_by_role("button", name="Start training")
        start.wait_for(timeout=60_000)
        field = page.get_by_label("Epochs")
        field.fill(str(epochs))
        field.press("Enter")
        page.get_by_text(f"{epochs} epochs (est.)").wait_for(timeout=60_000)
        page.wait_for_timeout(1500)  # the cost preview and its probe settle first
        browser_0, server_0 = browser_cpu_s(), process_cpu_s(pid)
        start.click()
        page.get_by_text("Training now").wait_for(timeout=60_000)
        page.wait_for_timeout(300)  # the page run that the click started ends
        ws["counting"] = True
        watch_0, watch_cpu_0 = time.monotonic(), browser_cpu_s()  # from here on: only the live view
        traced: dict[str, float] = {}
        if not watch:
            page.goto("about:blank")
        elif trace_s:
            traced = _trace_redraws(browser, page, trace_s)
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while True:
            done = [p for p in runs_dir.iterdir() if p.name not in before and (p / "summary.json").exists()]
            if done:
                ws["counting"] = False  # from here on: the one rerun that shows the result
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"no run finished in {RUN_TIMEOUT_S} s")
            time.sleep(0.2)
        browser_s, server_s = browser_cpu_s() - browser_0, process_cpu_s(pid) - server_0
        watch_cores = (browser_cpu_s() - watch_cpu_0) / (time.monotonic() - watch_0)
    finally:
        page.close()
    summary = json.loads((done[0] / "summary.json").read_text())
    train_s = summary["train_time_s"]
    return {
        "train_s": train_s, "browser_cpu_s": browser_s, "server_cpu_s": server_s,
        "browser_cores": browser_s / train_s, "watch_cores": watch_cores, **traced,
        **({"ws_msgs": ws["msgs"]} if watch else {}),
    }  # fmt: skip


def _trace_redraws(browser: Browser, page: Page, seconds: float) -> dict[str, float]:
    """Main-thread busy ms per redraw of the live chart over ``seconds`` of a Chromium trace.

    The trace ends half a second before the progress bar's ETA at the latest:
    the rerun that shows the result when the run ends is not the live view's.
    """
    page.locator(".mnist-live-chart").first.wait_for(timeout=60_000)
    page.wait_for_timeout(1000)  # past the first, full draw
    page.evaluate(KEEP_CHARTS)
    before = page.evaluate(CHARTS)
    left = re.search(r"about ([\d.]+) s left", page.evaluate(STATUS_TEXT) or "")
    traced_s = max(1.0, min(seconds, float(left.group(1)) - 0.5)) if left else seconds
    browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
    page.wait_for_timeout(traced_s * 1000)
    trace = json.loads(browser.stop_tracing())
    after = page.evaluate(CHARTS)
    redraws = after["redraws"] - before["redraws"]
    updates = after["updates"] - before["updates"]
    tasks = main_thread_tasks(trace)
    per = (lambda total: total / redraws) if redraws else (lambda _total: float("nan"))
    per_update = (lambda total: total / updates) if updates else (lambda _total: float("nan"))
    return {
        "traced_s": traced_s,
        "redraws": redraws,
        "updates": updates,
        "busy_ms_per_redraw": per(sum(tasks)),
        "busy_ms_per_update": per_update(sum(tasks)),
        "chart_js_ms_per_redraw": per(after["ms"] - before["ms"]),
        "view_js_ms_per_update": per_update(after["view_ms"] - before["view_ms"]),
        "longest_task_ms": max(tasks, default=0.0),
    }


def _median_range(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


COLUMNS = (
    "train_s", "browser_cpu_s", "server_cpu_s", "browser_cores", "watch_cores",
    "busy_ms_per_redraw", "busy_ms_per_update", "chart_js_ms_per_redraw", "view_js_ms_per_update", "ws_msgs",
)  # fmt: skip


def report(rows: dict[str, list[dict[str, float]]]) -> list[str]:
    lines = [f"{'':24}" + "".join(f"{c:>22}" for c in COLUMNS)]
    for name in rows:
        cells = [
            _median_range([r[key] for r in rows[name]]) if all(key in r for r in rows[name]) else "-"
            for key in COLUMNS
        ]
        lines.append(f"{name:24}" + "".join(f"{c:>22}" for c in cells))
    base = [r["train_s"] for r in rows.get("unwatched", [])]
    for name in [v for v in rows if v != "unwatched" and base]:
        times = [r["train_s"] for r in rows[name]]
        paired = [t / b for t, b in zip(times, base, strict=True)]
        lines.append(
            f"{name} / unwatched: {statistics.median(times) / statistics.median(base):.2f}x "
            f"(median of paired ratios {statistics.median(paired):.2f}x, {min(paired):.2f}-{max(paired):.2f})"
        )
    watched = rows.get("watched", [])
    if watched and base:
        ratio = statistics.median([r["train_s"] / b for r, b in zip(watched, base, strict=True)])
        cores = statistics.median([r["watch_cores"] for r in watched])
        busy = [r["busy_ms_per_redraw"] for r in watched if "busy_ms_per_redraw" in r]
        ms = statistics.median(busy) if busy else float("nan")
        lines.append(
            f"targets (watched): training time {ratio:.2f}x unwatched (<= 1.10x), browser {cores:.2f} cores "
            f"while watching (<= 0.15), {ms:.1f} ms of main thread per chart redraw (< 20 ms)"
        )
    return lines


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """``values`` in ``os.environ`` while the block runs (a server started there inherits them)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--trace-s", type=float, default=4.0, help="seconds of trace per watched run")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="live-view-browser-") as tmp, ExitStack() as stack:
        data_root = Path(os.environ["MNIST_DATA_DIR"]) if os.environ.get("MNIST_DATA_DIR") else None
        if data_root is None:
            from tests.support.synthetic import write_dataset

            data_root = write_dataset(Path(tmp) / "data", n_train=10_000, n_test=1_000)
        repo_runs, one_runs = Path(tmp) / "runs", Path(tmp) / "runs-1-thread"
        repo_url, repo_proc = stack.enter_context(running_app(repo_runs, data_root, Path(tmp) / "repo.log"))
        with _environment(OMP_NUM_THREADS="1"):
            one_url, one_proc = stack.enter_context(running_app(one_runs, data_root, Path(tmp) / "one.log"))
        repo, one = (repo_url, repo_proc.pid, repo_runs), (one_url, one_proc.pid, one_runs)
        servers = {"unwatched": repo, "watched": repo, "watched, 1 thread": one}
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        print(
            f"MLP 784-512-10 bs64 (the Train page's default), {args.epochs} epochs, data {data_root}, "
            f"{args.repeats} repeats, load average {os.getloadavg()}"
        )
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
        for url, pid, runs_dir in (repo, one):  # warm-up: data load, codecarbon's probe, first kernels
            train_once(browser, url, pid, runs_dir, watch=False, epochs=args.epochs)
        for i in range(args.repeats):
            k = i % len(VARIANTS)
            order = [v for v in VARIANTS[k:] + VARIANTS[:k] if v in args.variants]  # drifts hit all alike
            for name in order:
                url, pid, runs_dir = servers[name]
                watch = name != "unwatched"
                trace_s = args.trace_s if watch else 0.0
                row = train_once(browser, url, pid, runs_dir, watch, trace_s, args.epochs)
                rows[name].append(row)
                print(
                    f"  {i + 1}/{args.repeats} {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items())
                )
        print("\n".join(report({k: v for k, v in rows.items() if v})))
        print(f"load average at the end: {os.getloadavg()}")
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
