"""The Train page's job views: live progress, the queue, the last result and the recent runs.

Not a page (app.py lists the pages): ``pages/train.py`` calls these. Jobs come
from the process-wide registry, runs from ``mnist_core.runs``; a fragment
polls the jobs twice a second while any is queued or running.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import streamlit as st

from mnist_core import data as core_data
from mnist_core import report
from mnist_core.config import RunConfig
from mnist_core.curves import Point, learning_curves, merge_history
from mnist_core.errors import MnistLabError
from mnist_core.jobs import MAX_CONCURRENT, Job, JobRegistry, JobSnapshot
from mnist_core.runs import RunInfo, load_history, load_run
from ui import live_route
from ui.charts import accuracy_figure, confusion_figure, loss_figure
from ui.live_chart import HEIGHT, live_learning_curves, polled_learning_curves
from ui.live_layers import live_layer_stats, polled_layer_stats
from ui.shared import literal, metric_row, show_job_metrics, show_progress_bar

LIVE_INTERVAL_S = 0.5  # without the route: redraw of a running job's progress and chart (twice a second)
# A click that starts a run waits this long for its folder (milliseconds once the data are cached; the
# first run of a server loads them), so the page draws the run whole instead of rerunning when it appears.
BEGIN_WAIT_S = 1.0
DETAILS_INTERVAL_S = 2.0  # without the route: its metrics and per-layer statistics
IDLE_POLL_S = 3.0  # while nothing trains: notice a run started from another tab
RECENT_RUNS = 10
RUNS_PAGE, DRAW_PAGE = "pages/runs.py", "pages/draw.py"
STATUS_ICONS = {
    "completed": ":material/check_circle:",
    "stopped": ":material/pause_circle:",
    "interrupted": ":material/error:",
    "failed": ":material/cancel:",
    "running": ":material/pending:",
}
LAYERS_CAPTION = (
    "Inside the network, one line per layer, measured on one training step at each point: how large the "
    "gradient is, how much a step changes the weights (about 0.001 of their size is healthy), and the share "
    "of units that never fire (ReLU) or sit flat at their limits (tanh, sigmoid). Gradients fading in the "
    "first layers of a deep sigmoid network, or units dying at a high learning rate, show here."
)
FIRST_POINTS = "The first points of the learning curve appear a quarter of a second into training."
ERROR_KEY, FOCUS_KEY, CONCURRENCY_KEY = "train_error", "train_focus", "train_max_concurrent"


def submit(
    registry: JobRegistry,
    root: Path,
    runs_dir: Path,
    cfg: RunConfig | None = None,
    name: str = "",
    resume_id: str | None = None,
) -> None:
    """Button callback: queue a new run or the resumption of one."""
    if cfg is None:
        return
    try:  # the page then draws it with its run: no rerun when that appears
        registry.submit(
            cfg, runs_dir=runs_dir, data_root=root, name=name or None, resume_id=resume_id,
            begin_wait=BEGIN_WAIT_S,
        )
    except MnistLabError as exc:
        st.session_state[ERROR_KEY] = str(exc)
        return
    st.session_state.pop(FOCUS_KEY, None)  # show this run's result once it ends


# -- live view ----------------------------------------------------------------------


def live_section(registry: JobRegistry, runs_dir: Path) -> None:
    """Each running job's panel, then the queue.

    What a redraw touches is kept small: a job's name and its Stop button are
    drawn once per page run. Served by ``streamlit run`` (``ui/live_route.py``),
    everything else too, and nothing reruns while the job trains: one element
    draws the progress bar, the metrics and the live chart from what the route
    answers twice a second, another the per-layer statistics (each fragment
    rerun would re-render the page in the browser: ~100 ms on this one). When
    the job ends, or a job is queued, started or asked to stop (from any tab),
    the element asks for one rerun. Without the route (AppTest) a fragment
    redraws the bar and the chart every :data:`LIVE_INTERVAL_S`, another the
    metrics and per-layer statistics every :data:`DETAILS_INTERVAL_S`; a job
    queued, started, ended or asked to stop reruns the page.
    """
    active = registry.active()
    started = _state_of(active)
    running, queued = registry.running(), registry.queued()
    for job in running:
        job_panel(job, registry, runs_dir, started)
    if queued:
        queue_panel(queued, len(running))
    if not running:
        _watch(registry, started, busy=bool(active))


def _watch(registry: JobRegistry, started: str, busy: bool) -> None:
    """No job trains: a fragment that draws nothing and reruns the page once one is queued, starts or ends."""

    @st.fragment(run_every=LIVE_INTERVAL_S if busy else IDLE_POLL_S)
    def watch() -> None:
        if page_state(registry) != started:
            st.rerun()

    watch()


def _job_points(job: Job, snap: JobSnapshot, runs_dir: Path) -> list:
    """The job's progress points, after the saved ones of the run it resumes."""
    points = list(snap.events)
    if job.resume_id is not None:
        points = merge_history(_saved_history(job.resume_id, str(runs_dir), job.id), points)
    return points


def job_panel(job: Job, registry: JobRegistry, runs_dir: Path, started: str) -> None:
    """A running job: its name and Stop button, then its live progress and details (:func:`live_section`)."""
    stopping = job.stop_requested
    with st.container(border=True):
        snap = job.snapshot()
        run = f" · run `{snap.run_id}`" if snap.run_id else ""
        st.markdown(f"**Training now:** {literal(snap.label)}{run}")
        if stopping:
            st.caption("Stopping after the current step…")
        else:
            st.button("Stop", key=f"train_stop_{job.id}", on_click=job.stop, icon=":material/stop:")

        def bar() -> None:
            if page_state(registry) != started:
                st.rerun()  # a job was queued, started, ended or asked to stop: refresh the page once
            show_progress_bar(job.snapshot())

        def metrics() -> None:
            snap = job.snapshot()
            show_job_metrics(snap)
            if live_layer_stats(f"train_layers_{job.id}", job.id, _job_points(job, snap, runs_dir)):
                st.caption(LAYERS_CAPTION)

        if live_route.served():  # the elements fetch their points and status: no fragment reruns
            saved = _saved_history(job.resume_id, str(runs_dir), job.id) if job.resume_id is not None else ()
            polled_job_curves(job, f"train_live_{job.id}", registry, saved)
            layers_url = live_route.url(job.id, view="layers")
            polled_layer_stats(f"train_layers_{job.id}", job.id, layers_url, caption=LAYERS_CAPTION)
            return

        @st.fragment(run_every=LIVE_INTERVAL_S)
        def progress() -> None:
            bar()
            if not live_learning_curves(
                f"train_live_{job.id}", job.id, _job_points(job, job.snapshot(), runs_dir)
            ):
                st.caption(FIRST_POINTS)

        @st.fragment(run_every=DETAILS_INTERVAL_S)
        def details() -> None:
            metrics()

        progress()
        details()


def page_state(registry: JobRegistry) -> str:
    """What a page shows of the jobs: which are active, their state and run, whether a stop was asked.

    The route answers it (the element asks for a rerun when it changes); the
    fragments of the fallback compare it too.
    """
    return _state_of(registry.active())


def _state_of(jobs: Sequence[Job]) -> str:
    return repr([(job.id, job.state, job.run_id, job.stop_requested) for job in jobs])


def polled_job_curves(
    job: Job,
    key: str,
    registry: JobRegistry,
    saved: Sequence[Point] = (),
    height: int = HEIGHT,
    compact: bool = False,
    status: bool = True,
) -> bool:
    """A running job's progress bar and metrics (``status``) and live loss and accuracy, served by the route.

    Drawn once per page run: the element fetches its points and status itself
    and asks for one rerun when the job ends or :func:`page_state` changes
    (True, in the run of a fragment it is in: the caller reruns the page).
    Only where :func:`ui.live_route.served`; ``saved``: the history of the run
    the job resumes.
    """
    live_route.expose(job, saved, page=partial(page_state, registry))
    url = live_route.url(job.id)
    page = page_state(registry)
    return polled_learning_curves(key, job.id, url, height=height, compact=compact, page=page, status=status)


def live_job_curves(job: Job, key: str, height: int = 220) -> None:
    """A running job's live loss and accuracy (a sweep's progress view draws its current run with it)."""
    live_learning_curves(key, job.id, list(job.snapshot().events), height=height)


@st.cache_data(show_spinner=False, max_entries=32)
def _saved_history(run_id: str, runs_dir: str, job_id: str) -> list[dict[str, object]]:
    # Read once per resumed job: only the points before it resumed are used.
    return load_history(run_id, runs_dir)


def curves(points: list, key: str) -> None:
    """A finished run's learning curves (Plotly: the rich static view)."""
    data = learning_curves(points)
    if data.empty:
        st.caption("This run has no learning-curve points.")
        return
    loss_col, acc_col = st.columns(2)
    loss_col.plotly_chart(loss_figure(data), key=f"{key}_loss", width="stretch")
    acc_col.plotly_chart(accuracy_figure(data), key=f"{key}_acc", width="stretch")


def queue_panel(queued: list[Job], n_running: int) -> None:
    with st.container(border=True):
        st.markdown(
            f"**Waiting: {len(queued)} run{'s' if len(queued) != 1 else ''}** "
            f"(they start in this order when a slot is free; {n_running} training now)"
        )
        for position, job in enumerate(queued, start=1):
            what = f"resume `{job.resume_id}`" if job.resume_id else literal(job.title)
            text_col, button_col = st.columns([5, 1], vertical_alignment="center")
            text_col.markdown(f"{position}. {what}")
            button_col.button("Cancel", key=f"train_cancel_{job.id}", on_click=job.stop)


# -- the result of the last run -----------------------------------------------------


def _last_ended(registry: JobRegistry) -> Job | None:
    """The latest job that ended; cancelled ones (stopped before they started) aside."""
    ended = [
        j
        for j in registry.jobs()
        if j.state == "failed" or (j.state in ("completed", "stopped") and j.run_id)
    ]
    return ended[-1] if ended else None


def result_section(registry: JobRegistry, runs_dir: Path, runs: list[RunInfo] | None = None) -> None:
    """The run picked in the list, else the one the latest job trained.

    Its energy and CO2 take the units that suit the recent runs listed under it
    (``runs``), so two runs shown one after the other read in the same units.
    """
    last = _last_ended(registry)
    run_id = st.session_state.get(FOCUS_KEY) or (last.run_id if last else None)
    if run_id is None:
        if last is not None:  # it failed before its run folder existed (no dataset, ...)
            st.error(f"The last run could not start: {last.snapshot().error}")
        return
    try:
        run = load_run(run_id, runs_dir)
    except MnistLabError as exc:
        st.error(str(exc))
        return
    try:
        history = load_history(run_id, runs_dir)
    except MnistLabError as exc:  # the figures and the confusion matrix are in summary.json: still shown
        st.warning(f"{exc} The learning curves cannot be drawn; the figures below are the run's own.")
        history = []
    st.subheader(f"Result: {literal(run.name)}")
    st.caption(
        f"Run `{run.id}` · {run.config.label()} · {run.status} · "
        f"{report.epochs_done(run, history)}/{run.config.epochs} epochs"
    )
    failed_here = last is not None and last.state == "failed" and last.run_id == run.id
    if run.status == "failed":
        st.error(run.meta.get("error") or "The run failed.")
    elif failed_here and last is not None:
        # The failure could not even be written to run.json (a full disk): the job still knows why.
        error = (last.snapshot().error or "unknown error").rstrip(".")
        st.error(f"The run failed: {error}. Resume it from the list of runs once that is fixed.")
    elif run.status == "interrupted":
        st.warning(
            "This run was interrupted: the server stopped while it trained. Its curve below "
            "goes up to the last finished epoch; resume it from the list of runs."
        )
    elif run.status == "stopped":
        st.info("Stopped before the end, with the weights it had then. Resume it from the list of runs.")
    stuck = report.did_not_learn(run, history) if run.status in ("completed", "stopped") else None
    if stuck is not None:
        st.warning(stuck, icon=":material/trending_flat:")
    if run.summary and run.status in ("completed", "stopped"):
        items = report.summary_items(run.summary, [r.summary for r in (runs or [])[:RECENT_RUNS]])
        for row in range(0, len(items), 4):
            with metric_row():
                for item in items[row : row + 4]:
                    st.metric(item.label, item.value, help=item.help)
    curves(history, key=f"train_result_{run.id}")
    confusion = run.summary.get("confusion")
    if confusion and run.status in ("completed", "stopped"):
        names = core_data.CLASS_NAMES[run.config.dataset]
        st.plotly_chart(confusion_figure(confusion, names), key=f"train_confusion_{run.id}", width="stretch")
        compare_col, draw_col = st.columns(2)
        compare_col.page_link(
            RUNS_PAGE,
            label="Compare this run with others",
            icon=":material/monitoring:",
            query_params={"run": run.id},
        )
        draw_col.page_link(
            DRAW_PAGE,
            label="Draw a digit for this model",
            icon=":material/draw:",
            query_params={"run": run.id},
        )


# -- recent runs --------------------------------------------------------------------


def runs_section(registry: JobRegistry, root: Path, runs_dir: Path, runs: list[RunInfo]) -> None:
    st.subheader("Recent runs")
    with st.expander("Settings"):
        st.session_state.setdefault(CONCURRENCY_KEY, registry.max_concurrent)
        st.number_input(
            "Runs that may train at the same time",
            1,
            MAX_CONCURRENT,
            key=CONCURRENCY_KEY,
            on_change=lambda: registry.set_max_concurrent(int(st.session_state[CONCURRENCY_KEY])),
            help="Shared by every tab. Runs at once share the CPU's threads (on 2 cores: one each), so "
            "each goes at about half speed and its time is measured beside the other; a queue (a sweep, "
            "the study) finishes sooner in all: the blog study without its batch-size-1 rows, two at once, "
            "58 s against 77 s one at a time (benchmark part 12, a quiet 2-core CPU).",
        )
    if not runs:
        st.caption(f"No saved run yet in `{runs_dir}`.")
        return
    for run in runs[:RECENT_RUNS]:
        run_row(run, registry, root, runs_dir)
    if len(runs) > RECENT_RUNS:
        st.caption(f"{len(runs) - RECENT_RUNS} older runs are on the Runs page.")


def _show(run_id: str) -> None:
    st.session_state[FOCUS_KEY] = run_id


def run_row(run: RunInfo, registry: JobRegistry, root: Path, runs_dir: Path) -> None:
    job = registry.job_for_run(run.id)
    status = f"{run.status} (resume {job.state})" if job is not None and job.resume_id else run.status
    name_col, status_col, acc_col, button_col = st.columns([4, 2, 1.2, 2.2], vertical_alignment="center")
    name_col.markdown(f"{literal(run.name)}  \n`{run.id}`")
    status_col.markdown(f"{STATUS_ICONS.get(run.status, '')} {status}")
    acc_col.markdown(report.percent(run.test_accuracy))
    buttons = button_col.container(horizontal=True)  # side by side, or one above the other when narrow
    buttons.button("Show", key=f"train_show_{run.id}", on_click=_show, args=(run.id,))
    if job is None and report.can_resume(run):
        buttons.button(
            "Resume",
            key=f"train_resume_{run.id}",
            on_click=submit,
            kwargs={
                "registry": registry,
                "root": root,
                "runs_dir": runs_dir,
                "cfg": run.config,
                "resume_id": run.id,
            },
        )
