"""How long the Inside views take for a 3 x 1024 MLP (issue 23: "renders in under 1 s"), in CPU seconds.

CPU time (``time.process_time``: every thread of this process, the AppTest
script thread and torch's included), because wall time on a shared 2-core
machine says more about the neighbours than about the code. Prints the median
of ``--repeats`` runs of:

1. the core: ``internals.inspect_run`` (Runs page, 2,000 test images),
   ``internals_drawing.inspect_drawing`` (Draw page, one drawing), and
   ``probes.run_probes`` fitting the readouts per layer (the first time a
   run is opened: 5,000 training + 2,000 test images) and reading them back
   from ``probes.npz`` (every later time);
2. the whole page script through AppTest: the Runs page's Inside view the
   first time ever (no probes.npz, Streamlit caches cleared), cold (caches
   cleared, probes.npz kept) and warm (a rerun), and the Draw page with a
   drawing, its layer view open and closed. The first time ever, the page
   draws everything else before it fits the readouts (last, under a
   spinner): the CPU time until the fit starts is what the user waits for
   the rest of the view;
3. where a fit's time goes: reading the splits, the forward passes, the solves.

    MNIST_DATA_DIR=/path/to/data .venv/bin/python scripts/inside_speed.py [--repeats 5]

Without ``MNIST_DATA_DIR`` a generated MNIST-shaped dataset is written to a
temporary folder (the cost is the same: 2,000 images of 28x28).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import mnist_core  # noqa: F401 (before torch: it tunes OpenMP as the app does; 5-10x less CPU when busy)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support, as pytest finds it


def cpu_s(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def profile_fit(model: object, repeats: int) -> None:
    """Where a fit's CPU time goes: the training split, the forward passes, the ridge solves and scales."""
    from mnist_core import data, probes

    data.clear_cache()
    start = time.process_time()
    fit_x, fit_y = data.load_split("mnist", train=True, download=False).tensors()
    test_x = data.load_split("mnist", train=False, download=False).x
    print(f"fit   reading the train and test splits (once per process): {time.process_time() - start:.3f} s")
    n, m = probes.FIT_IMAGES, probes.TEST_IMAGES
    passes = cpu_s(lambda: (probes.features(model, fit_x[:n]), probes.features(model, test_x[:m])), repeats)
    print(f"fit   forward passes ({n:,} + {m:,} images):  {passes:.3f} s")
    feats = probes.features(model, fit_x[:n])[0]

    def solves() -> None:
        for f in feats:
            weight, bias = probes.fit_ridge(f, fit_y[:n], 10)
            probes.fit_scale(f @ weight + bias, fit_y[:n])

    print(f"fit   ridge solves and scales ({len(feats)} positions): {cpu_s(solves, repeats):.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="inside-speed-"))
    os.environ["MNIST_LAB_CHECKPOINTS"] = str(tmp / "checkpoints")
    if not os.environ.get("MNIST_DATA_DIR"):
        from tests.support.synthetic import write_dataset

        os.environ["MNIST_DATA_DIR"] = str(write_dataset(tmp / "data", n_train=5000, n_test=2000))
    logging.getLogger("streamlit").setLevel(logging.ERROR)

    import streamlit as st
    import torch
    from streamlit.testing.v1 import AppTest

    from mnist_core import internals, internals_drawing, probes, runs
    from mnist_core.config import RunConfig
    from mnist_core.models import build_model
    from tests.support.drawing import canvas_png, inject

    cfg = RunConfig(hidden=(1024, 1024, 1024))
    writer = runs.RunWriter.create(cfg, name="3 x 1024")
    runs.write_torch(writer.path / "weights.pt", build_model(cfg).state_dict())
    writer.finish("completed", {"test_accuracy": 0.5})
    run_id = writer.id
    model = build_model(cfg).eval()
    x = torch.randn(1, 1, 28, 28)
    print(f"torch threads: {torch.get_num_threads()}; load average: {os.getloadavg()}")
    whole = cpu_s(lambda: internals.inspect_run(run_id), args.repeats)
    print(f"core  inspect_run (2,000 test images): {whole:.3f} s")
    drawing = cpu_s(lambda: internals_drawing.inspect_drawing(model, x), args.repeats)
    print(f"core  inspect_drawing (one drawing):    {drawing:.3f} s")
    cache = runs.run_path(run_id) / probes.FILE

    def fit() -> None:
        cache.unlink(missing_ok=True)
        probes.run_probes(run_id)

    print(f"core  run_probes, fitted (first time):  {cpu_s(fit, args.repeats):.3f} s")
    print(f"core  probes.fit_seconds (the spinner's estimate): {probes.fit_seconds(model):.1f} s")
    profile_fit(model, args.repeats)
    kept = cpu_s(lambda: probes.run_probes(run_id), args.repeats)
    print(f"core  run_probes, from probes.npz:      {kept:.3f} s")

    app = str(ROOT / "app.py")

    def runs_page() -> AppTest:
        at = AppTest.from_file(app, default_timeout=120)
        at.switch_page("pages/runs.py")
        at.session_state["runs_selected"] = [run_id]
        at.session_state["runs_view"] = "Inside"
        at.session_state["runs_inside_runs"] = [run_id]
        return at

    def cold() -> None:
        st.cache_data.clear()
        st.cache_resource.clear()
        at = runs_page()
        at.run()
        assert not at.exception and len(at.image) == 1, [e.value for e in at.exception]

    def first() -> None:
        cache.unlink(missing_ok=True)
        cold()

    print(f"page  Runs, Inside, first time ever:     {cpu_s(first, args.repeats):.3f} s")
    fit_probes = probes.fit_probes
    before_fit: list[float] = []

    def noted(*a: object, **k: object) -> object:
        before_fit.append(time.process_time() - started[-1])  # everything else is drawn by now
        return fit_probes(*a, **k)

    started: list[float] = []

    def first_until_fit() -> None:
        started.append(time.process_time())
        first()

    probes.fit_probes = noted  # type: ignore[assignment]
    try:
        for _ in range(args.repeats):
            first_until_fit()
    finally:
        probes.fit_probes = fit_probes  # type: ignore[assignment]
    shown = statistics.median(before_fit)
    print(f"page  Runs, Inside, first time ever, all but the readouts drawn: {shown:.3f} s")
    warm_app = runs_page()
    warm_app.run()
    print(f"page  Runs, Inside, cold:                {cpu_s(cold, args.repeats):.3f} s")
    print(f"page  Runs, Inside, warm (a rerun):      {cpu_s(warm_app.run, args.repeats):.3f} s")

    def draw_page(open_view: bool) -> AppTest:
        at = AppTest.from_file(app, default_timeout=120)
        at.switch_page("pages/draw.py")
        at.session_state["draw_run"] = run_id
        at.session_state["draw_inside_layers"] = open_view
        inject(at, canvas_png(7))
        assert not at.exception, [e.value for e in at.exception]
        return at

    for open_view in (False, True):
        at = draw_page(open_view)
        label = "open  " if open_view else "closed"
        print(f"page  Draw, layer view {label}, a rerun:   {cpu_s(at.run, args.repeats):.3f} s")


if __name__ == "__main__":
    main()
