"""Browser main-thread time per redraw of the Train page's live view, from a Chromium trace.

Starts ``streamlit run app.py`` from a repository checkout (``--root``: this one,
or an older export such as ``git archive <commit> | tar -x -C /tmp/old`` to
compare with the Plotly live view), trains the Train page's default model
(MLP 784-512-10, batch 64) for ``--epochs`` from headless Chromium, and while
the run trains records ``--seconds`` of a Chromium trace (categories
``devtools.timeline`` and ``disabled-by-default-devtools.timeline``, Playwright's
``browser.start_tracing``). From the page's renderer main thread (the
``CrRendererMain`` thread with the most work) it sums the top-level ``RunTask``
events: the busy time of the browser's main thread, whatever it did.

Redraws are counted in the page: the live uPlot element counts its own
updates (``data-redraws``); Plotly charts are counted as new ``.plot-container``
nodes (Plotly's ``newPlot`` makes one; a changed figure is a new element), divided
by the two charts.

    .venv/bin/python scripts/live_chart_redraw.py --root . --repeats 3
    .venv/bin/python scripts/live_chart_redraw.py --root /tmp/old --repeats 3

Uses ``MNIST_DATA_DIR`` (real MNIST) when set, as the app does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

COUNT_PLOTLY = """() => {
    window.__plotlyNodes = 0;
    new MutationObserver(records => {
        for (const r of records) for (const n of r.addedNodes) {
            if (n.nodeType !== 1) continue;
            if (n.classList.contains("plot-container")) window.__plotlyNodes += 1;
            window.__plotlyNodes += n.querySelectorAll(".plot-container").length;
        }
    }).observe(document.body, {childList: true, subtree: true});
}"""
REDRAWS = """() => {
    const live = document.querySelector(".mnist-live-chart");
    if (live) return Number(live.dataset.redraws);
    return (window.__plotlyNodes || 0) / 2;
}"""


def main_thread_tasks(trace: dict, field: str = "tdur") -> list[float]:
    """Thread CPU times (``tdur``, ms; ``dur`` for wall time) of the top-level tasks on the busiest renderer
    main thread. CPU time, because on a loaded machine a task's wall time includes waiting for a core."""
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    mains = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name" and e["args"].get("name") == "CrRendererMain"
    }
    per_thread: dict[tuple[int, int], list[float]] = {}
    for e in events:
        if e.get("name") == "RunTask" and e.get("ph") == "X" and (e["pid"], e["tid"]) in mains:
            per_thread.setdefault((e["pid"], e["tid"]), []).append(e.get(field, 0) / 1000)
    return max(per_thread.values(), key=sum) if per_thread else []


def measure_once(root: Path, epochs: int, seconds: float, data_dir: str) -> dict[str, float]:
    sys.path.insert(0, str(root / "tests" / "e2e"))
    from app_server import CHROMIUM, CHROMIUM_ARGS, running_app
    from train_helpers import start_training

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        runs_dir = Path(tmp) / "runs"
        with running_app(runs_dir, Path(data_dir), Path(tmp) / "app.log") as (url, _proc):
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
            page.set_default_timeout(120_000)
            page.goto(f"{url}/train")
            page.get_by_role("button", name="Start training").wait_for()
            page.evaluate(COUNT_PLOTLY)
            start_training(page, epochs)
            page.locator(".mnist-live-chart, .js-plotly-plot").first.wait_for()
            page.wait_for_timeout(2000)  # past the first draws
            before = page.evaluate(REDRAWS)
            browser.start_tracing(
                page=page, categories=["devtools.timeline", "disabled-by-default-devtools.timeline"]
            )
            page.wait_for_timeout(seconds * 1000)
            trace = json.loads(browser.stop_tracing())
            redraws = page.evaluate(REDRAWS) - before
            still = page.get_by_text("Training now").is_visible()
            browser.close()
    if os.environ.get("LIVE_CHART_TRACE"):
        Path(os.environ["LIVE_CHART_TRACE"]).write_text(json.dumps(trace))
    wall = sum(main_thread_tasks(trace, "dur"))
    tasks = main_thread_tasks(trace)
    busy = sum(tasks)
    return {
        "redraws": redraws,
        "busy_ms_per_s": busy / seconds,
        "busy_ms_per_redraw": busy / redraws if redraws else float("nan"),
        "longest_task_ms": max(tasks, default=0.0),
        "wall_busy_ms_per_redraw": wall / redraws if redraws else float("nan"),
        "trained_throughout": float(still),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data_dir = os.environ.get("MNIST_DATA_DIR", "")
    if not data_dir:
        sys.exit("Set MNIST_DATA_DIR to the MNIST folder (e.g. ../shared/data).")
    root = args.root.resolve()
    rows = [measure_once(root, args.epochs, args.seconds, data_dir) for _ in range(args.repeats)]
    print(f"root {args.root}, load {os.getloadavg()[0]:.1f}")
    for row in rows:
        print(json.dumps({k: round(v, 1) for k, v in row.items()}))
    for key in ("busy_ms_per_redraw", "busy_ms_per_s", "longest_task_ms"):
        print(f"median {key}: {statistics.median(r[key] for r in rows):.1f}")


if __name__ == "__main__":
    main()
