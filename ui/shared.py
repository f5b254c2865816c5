"""UI glue shared by the pages: process-wide resources and small renderers.

Not a page (app.py lists the pages). Nothing here trains, measures or reads
checkpoints itself: it wires Streamlit widgets to ``mnist_core`` calls.
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from mnist_core import energy, estimate, report
from mnist_core.config import RunConfig
from mnist_core.jobs import Job, JobRegistry, JobSnapshot

SESSION = "session"  # persist_state=SESSION: a widget's value survives a switch to another page and back
FLASH_KINDS = {"error": st.error, "warning": st.warning, "info": st.info, "success": st.success}


def flash(key: str, kind: str, text: str) -> None:
    """Keep a callback's message under ``key`` for the script run that follows it.

    Callbacks run before the script, so they cannot draw it themselves;
    the page calls :func:`show_flash` with the same key. ``kind`` is one of
    :data:`FLASH_KINDS`.
    """
    st.session_state.setdefault(key, []).append((kind, text))


def show_flash(key: str) -> None:
    """Draw, once, the messages that callbacks left under ``key``."""
    for kind, text in st.session_state.pop(key, []):
        FLASH_KINDS[kind](text)


def literal(text: object) -> str:
    """``text`` (a run's or sweep's name) as a Markdown code span: shown exactly as typed.

    Messages, captions, labels and buttons are Markdown; a name is a user's or an imported
    file's text, and must not become a link, ``:red[colour]``, ``$maths$`` or an ``:emoji:``
    (backslash escapes would not stop the emoji: they are replaced inside text).
    """
    text = " ".join(str(text).splitlines())
    fence = "`"
    while fence in text:  # longer than any run of backticks in the name
        fence += "`"
    pad = " " if text[:1] in "` " or text[-1:] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"


@st.cache_resource
def job_registry() -> JobRegistry:
    """The one job registry of this server process, shared by every tab and session.

    It holds every kind of background work: training jobs, dataset downloads
    (``mnist_core.tasks.start_download``) and sweeps on Ray (``sweeps.start_on_ray``).
    Made on the server's first page run, which also starts codecarbon's slow
    first start in the background, so the first run a user trains does not wait for it.
    """
    energy.warm_up()
    return JobRegistry()


@st.cache_resource
def _probes() -> estimate.ProbeCache:
    """The server's probes: each configuration timed once, never again while a run trains."""
    return estimate.ProbeCache()


def probe_fn(registry: JobRegistry, *, wait_idle: bool = False) -> estimate.ProbeFn:
    """How the Train and Sweeps pages time a configuration: the server's probes, taken once.

    A probe taken while a run of ``registry`` trains is marked busy (re-taken once nothing trains).
    ``wait_idle`` (the Sweeps page): none is taken while a run trains, whose time it would change.
    """
    return lambda cfg: _probes().get(cfg, bool(registry.running()), wait_idle=wait_idle)  # busy: now


# -- renderers ----------------------------------------------------------------


def broken_caption(broken: Mapping[str, str]) -> None:
    """One line under a page's runs: how many folders are left out as broken (the Runs page says why)."""
    if broken:
        folders = "folder" if len(broken) == 1 else "folders"
        st.caption(f"{len(broken)} broken run {folders} left out: the Runs page says what is wrong.")


def percent(value: float | None) -> str:
    """A share as the pages show it: one decimal, ``97.3%``."""
    return report.percent(value, 1)


def metric_row() -> DeltaGenerator:
    """A row for ``st.metric``s that wraps onto another line on a narrow screen.

    They sit side by side and share the width, as in ``st.columns``, which
    would instead cut their labels and values short ("40…") at 1024 px.
    """
    return st.container(horizontal=True, gap="medium")


RECENT_STEPS = "Mean over the latest training steps, not over the whole epoch."
VALIDATION = "On the validation split, after the last finished epoch."


def show_job_progress(snap: JobSnapshot, compact: bool = False) -> None:
    """Progress bar (with the time spent and left) and live metrics of one training job.

    The Train page's live view shows the learning rate too; ``compact`` (the
    Home page's quick model) leaves it out.
    """
    show_progress_bar(snap)
    show_job_metrics(snap, compact)


def show_progress_bar(snap: JobSnapshot) -> None:
    """The progress bar of one job, with the time spent and left (the live views redraw it often)."""
    fraction, text = report.progress_line(snap)  # says what it does: starting, training, testing
    st.progress(fraction, text=text)


def job_metric_values(snap: JobSnapshot, compact: bool = False) -> list[tuple[str, str, str | None]]:
    """(label, value, help) of the live metrics of one job (none while it is queued); ``compact``: no rate.

    Also what the live charts' route answers (``ui/live_route.py``), so both views read the same.
    """
    if snap.state == "queued":
        return []
    values: list[tuple[str, str, str | None]] = [
        ("Loss", "—" if snap.loss is None else f"{snap.loss:.4f}", RECENT_STEPS),
        ("Train accuracy", percent(snap.train_acc), RECENT_STEPS),
        ("Validation accuracy", percent(snap.val_acc), VALIDATION),
        ("Images / s", "—" if snap.samples_per_s is None else f"{snap.samples_per_s:,.0f}", None),
    ]
    if not compact:
        values.append(("Learning rate", "—" if snap.lr is None else f"{snap.lr:.3g}", None))
    return values


def show_job_metrics(snap: JobSnapshot, compact: bool = False) -> None:
    """The live metrics of one training job (none while it is queued); ``compact`` leaves out the rate."""
    values = job_metric_values(snap, compact)
    if not values:
        return
    with metric_row():
        for label, value, help_text in values:
            st.metric(label, value, help=help_text)


def latest_job(jobs: list[Job], config: RunConfig) -> Job | None:
    """The most recently submitted job with this configuration, if any (``jobs`` is oldest first)."""
    matching = [job for job in jobs if job.config == config]
    return matching[-1] if matching else None
