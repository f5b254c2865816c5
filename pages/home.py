"""Landing page: what the app is, whether MNIST is here, and a first model in one click."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from mnist_core import data as core_data
from mnist_core.config import quick_default
from mnist_core.errors import MnistLabError
from mnist_core.jobs import Job, JobSnapshot
from mnist_core.runs import RunInfo, best_of, default_runs_dir, scan_runs
from mnist_core.tasks import download_task, start_download
from ui import live_route
from ui.live_chart import live_learning_curves
from ui.shared import (
    broken_caption,
    job_registry,
    latest_job,
    literal,
    percent,
    show_job_metrics,
    show_progress_bar,
)
from ui.shell import require_shell
from ui.train_jobs import BEGIN_WAIT_S, DETAILS_INTERVAL_S, LIVE_INTERVAL_S, polled_job_curves

DATASET = "mnist"
DRAW_PAGE, SWEEPS_PAGE = "pages/draw.py", "pages/sweeps.py"
QUICK_ERROR_KEY = "home_quick_error"

INTRO = """
Train handwritten-digit classifiers from your browser and see, by doing, how a
network's **depth**, **width** and **batch size** change its **accuracy** and its
**cost**: training time, parameters, FLOPs, model size and energy.
"""
STUDY = """
The app reproduces a blog study that trained MLPs and CNNs on MNIST. Two of its
findings to check for yourself:

- a plain MLP **784-512-10** reaches **96.2%** test accuracy after only 2 epochs;
- on a **2 x 1024** MLP, batch size **1** took **408 s** where batch size **64** took
  **13 s**, for a similar accuracy.
"""
FIRST_STEPS = "Start with the quick model, then draw a digit and see what it predicts."
NEXT_STEPS = "Draw a digit for your best model, or train your own on the Train page and compare them."


def main() -> None:
    require_shell(__file__)
    st.title("MNIST Lab")
    st.markdown(INTRO)
    try:
        listing: tuple[list[RunInfo], dict[str, str]] | str = scan_runs()
    except MnistLabError as exc:
        listing = str(exc)
    done = not isinstance(listing, str) and any(run.status == "completed" for run in listing[0])
    st.markdown(NEXT_STEPS if done else FIRST_STEPS)
    root = core_data.data_root()
    # The runs first: on a phone the quick model's button was more than a screen down, under the study.
    runs_section(root, listing)
    st.subheader("The study")
    st.markdown(STUDY)
    st.page_link(SWEEPS_PAGE, label="Reproduce the study in one click", icon=":material/science:")
    dataset_section(root)


# -- dataset ------------------------------------------------------------------


def dataset_section(root: Path) -> None:
    st.subheader("Dataset")
    watching = _downloading(root)

    @st.fragment(run_every=0.5 if watching else None)
    def status() -> None:
        download = download_task(job_registry(), DATASET, root)
        now = _downloading(root)
        if core_data.is_available(DATASET, root) and not now:
            st.success(f"MNIST found in `{core_data.raw_folder(DATASET, root).resolve()}`.")
        elif now:
            done = core_data.download_progress(DATASET, root)
            st.progress(done, text=f"Downloading MNIST (about 11.6 MB)… {done:.0%}")
        else:
            _missing(root, download.error if download else None)
        if watching and not now:
            st.rerun()  # the download ended: refresh the whole page once

    status()


def _downloading(root: Path) -> bool:
    """A UI download is running, or a job is fetching the data before training."""
    download = download_task(job_registry(), DATASET, root)
    if download is not None and download.running:
        return True
    if core_data.is_available(DATASET, root):
        return False
    return bool(job_registry().active())


def _missing(root: Path, error: str | None) -> None:
    if error:
        st.error(error)
    else:
        reason = "the files are not on this machine yet"
        st.warning(core_data.missing_message(DATASET, root, reason))
    st.markdown(
        "With internet access the app downloads MNIST by itself (from the mirrors torchvision uses); "
        "training the quick model does it too."
    )
    st.button(
        "Download MNIST now",
        on_click=start_download,
        args=(job_registry(), DATASET, root),
    )


# -- runs and the quick model --------------------------------------------------


def runs_section(root: Path, listing: tuple[list[RunInfo], dict[str, str]] | str) -> None:
    """How many runs there are, the best one, and the quick model while none is completed."""
    st.subheader("Your runs")
    if isinstance(listing, str):  # the checkpoints folder could not be read
        st.error(listing)
        return
    runs, broken = listing
    best = best_of(runs)
    completed = [run for run in runs if run.status == "completed"]
    noun = "run" if len(runs) == 1 else "runs"
    st.markdown(f"**{len(runs)} saved {noun}** ({len(completed)} completed) in `{default_runs_dir()}`.")
    broken_caption(broken)

    job = latest_job(job_registry().jobs(), quick_default())
    snap = job.snapshot() if job is not None else None
    if job is not None:
        quick_job_panel(job)
    if not completed and not (snap and snap.active):
        quick_button(root)
    if best is not None and not (snap and snap.state == "completed"):
        accuracy = percent(best.test_accuracy)
        label = best.config.label()
        name = literal(best.name) if best.name == label else f"{literal(best.name)} ({label})"
        st.markdown(f"Best run so far: {name}, test accuracy **{accuracy}**.")
        st.page_link(DRAW_PAGE, label="Draw a digit for your best model", icon=":material/draw:")


def quick_button(root: Path) -> None:
    quick = quick_default()
    st.markdown(
        f"No completed run yet. The quick model (**{quick.label()}**, {quick.epochs} "
        f"epoch{'' if quick.epochs == 1 else 's'}) "
        "trains in under half a minute on a laptop CPU and is good enough to read your drawings."
    )
    st.button(
        "Train a quick default model",
        type="primary",
        on_click=_start_quick,
        args=(root,),
        disabled=_downloading(root),
    )
    error = st.session_state.pop(QUICK_ERROR_KEY, None)
    if error:
        st.error(error)


def _start_quick(root: Path) -> None:
    try:
        job_registry().submit(  # drawn with its run: no rerun when the run appears
            quick_default(), runs_dir=default_runs_dir(), data_root=root, begin_wait=BEGIN_WAIT_S
        )
    except MnistLabError as exc:
        st.session_state[QUICK_ERROR_KEY] = str(exc)


def quick_job_panel(job: Job) -> None:
    """The quick model's run. Served by ``streamlit run`` (``ui/live_route.py``), one element draws its
    progress, metrics and chart from what the route answers twice a second and asks for one rerun when
    it ends: no fragment reruns. Without the route a fragment redraws the progress and chart twice a
    second, another the metrics (the name and Stop button are drawn once)."""
    snap = job.snapshot()
    st.markdown(f"Quick model: **{job.config.label()}**")
    if not snap.active:
        quick_result(snap)
        return
    if live_route.served():
        polled_job_curves(job, f"home_quick_{job.id}", job_registry(), height=220, compact=True)
    else:

        @st.fragment(run_every=LIVE_INTERVAL_S)
        def progress() -> None:
            snap = job.snapshot()
            if not snap.active:
                st.rerun()  # the job ended: refresh run counts and buttons once
            show_progress_bar(snap)
            live_learning_curves(f"home_quick_{job.id}", job.id, snap.events, height=220)

        @st.fragment(run_every=DETAILS_INTERVAL_S)
        def details() -> None:
            show_job_metrics(job.snapshot(), compact=True)

        progress()
        details()
    st.button("Stop", on_click=job.stop, key=f"stop_{job.id}")


def quick_result(snap: JobSnapshot) -> None:
    """How the quick model's run ended."""
    if snap.state == "completed":
        accuracy = percent(snap.summary.get("test_accuracy"))
        st.success(f"Finished: test accuracy **{accuracy}** on the {DATASET.upper()} test set.")
        st.page_link(DRAW_PAGE, label="Draw a digit and see what it predicts", icon=":material/draw:")
    elif snap.state == "stopped":
        st.info("Stopped before the end. Train it again below when you are ready.")
    else:
        st.error(snap.error or "The run failed.")


main()
