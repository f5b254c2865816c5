"""Sweeps page: reproduce the blog study in one click, run grids, see what each value did.

Thin UI: ``mnist_core.study`` knows the blog's rows and published figures,
``mnist_core.sweeps`` builds grids, queues their runs in the process-wide job
registry (the same queue as the Train page), reads which points are done and
weighs differences against the seed noise; ``ui.sweep_view`` draws a sweep's
charts. A sweep's runs are normal runs tagged ``sweep:<id>``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from mnist_core import data as core_data
from mnist_core import raytrials, report, search, study, sweeps
from mnist_core.config import RunConfig
from mnist_core.errors import MnistLabError
from mnist_core.jobs import Job, JobRegistry
from mnist_core.runs import RunInfo, default_runs_dir, scan_runs
from ui import live_route, sweep_view
from ui.shared import SESSION, broken_caption, flash, job_registry, literal, probe_fn, show_flash
from ui.shell import require_shell
from ui.train_jobs import IDLE_POLL_S, live_job_curves, page_state, polled_job_curves

K = "sweeps_"
FLASH_KEY = f"{K}flash"
DEPTHS = list(range(1, 9))
WIDTHS = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
BATCH_SIZES = [1, 4, 16, 32, 64, 128, 256, 512, 1024]
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
LIVE_S = 1.0  # without the route: the progress rows, the running run's chart and the study table
# Served (ui/live_route.py), the running run's chart streams from the route and asks for a rerun of the
# rows when its run ends, which rerun the page; the fragments' timers only catch up (ETA, Ray sweeps).
SERVED_LIVE_S = 10.0
TABS = ("Reproduce the study", "Grid sweep")
TAB_KEY, TAB_KEPT = f"{K}tab", f"{K}tab_kept"  # the widget's state, and a copy that outlives a page switch
EMPTY = "—"  # what a table shows where a value is missing (Streamlit's default is the word "None")


def main() -> None:
    require_shell(__file__)
    st.title("Sweeps")
    st.markdown(
        "Reproduce the blog study in one click, or run a grid of depths, widths and batch sizes. "
        "Every run lands on the Runs page, tagged with its sweep; a stopped sweep resumes "
        "without redoing finished runs."
    )
    registry, root, runs_dir = job_registry(), core_data.data_root(), default_runs_dir()
    show_flash(FLASH_KEY)
    runs = _runs(say_broken=True)
    saved = _saved(runs_dir)
    # Tabs that track their state (key + on_change): a message shown above them, or a rerun
    # after Stop, would otherwise bring the user back to the first tab.
    study_tab, grid_tab = st.tabs(list(TABS), key=TAB_KEY, default=st.session_state.get(TAB_KEPT),
                                  on_change=_keep_tab)
    with study_tab:
        estimates = study_section(registry, root, runs_dir, runs, saved)
    with grid_tab:
        grid_section(registry, root, runs_dir, runs)
    saved_section(registry, root, runs_dir, runs, saved)
    # Last: they may time configurations no past run shows (a few seconds on a first visit), and fill
    # their places in the study tab, so the table, the grid and the sweeps' progress never wait for them.
    estimates()


def _keep_tab() -> None:
    st.session_state[TAB_KEPT] = st.session_state[TAB_KEY]  # a plain key survives a page switch


def _saved(runs_dir: Path) -> list[sweeps.Sweep] | None:
    try:
        return sweeps.list_sweeps(runs_dir)
    except OSError as exc:
        st.error(f"Cannot read the saved sweeps in {runs_dir}: {exc}. Check the folder's permissions.")
        return None


def _runs(*, say_broken: bool = False) -> list[RunInfo]:
    """The readable runs; ``say_broken``: a line says how many broken folders are left out."""
    try:
        good, broken = scan_runs()
    except OSError as exc:
        st.error(f"Cannot read the checkpoints folder: {exc}")
        return []
    if say_broken:
        broken_caption(broken)
    return good


# -- the study --------------------------------------------------------------------------------


def study_section(registry: JobRegistry, root: Path, runs_dir: Path, runs: list[RunInfo],
                  saved: list[sweeps.Sweep] | None) -> Callable[[], None]:
    """The study's choices, button and table; returns what fills in its time estimates, to call last."""
    st.markdown(
        "The blog's four experiments with its settings (2 epochs, Adam at 1e-3, its batch sizes, "
        "10% validation split), trained here and shown beside its published figures. "
        f"Published figures: [{study.SOURCE}]({study.SOURCE_URL})."
    )
    c1, c2 = st.columns([3, 2])
    experiments = c1.multiselect(
        "Experiments", list(study.EXPERIMENTS), default=list(study.EXPERIMENTS),
        format_func=study.EXPERIMENT_NAMES.get, key=f"{K}experiments", persist_state=SESSION,
        help="\n".join(f"- {t}" for t in study.EXPERIMENT_TITLES.values()),
    )
    batch_one = c2.checkbox("Include the batch-size-1 rows", value=True, key=f"{K}batch_one",
                            persist_state=SESSION)
    long_rows = [c for c in study.configs(experiments) if study.is_batch_one(c)]
    long_note = c2.empty() if long_rows else None
    repeats = int(c1.number_input(
        "Seeds per row", 1, study.MAX_REPEATS, 1, key=f"{K}study_repeats", persist_state=SESSION,
        help="Each row trained with seeds 0, 1, ...: with 2 or more the table tells a real difference "
             "from seed noise (3 is a good start).",
    ))  # fmt: skip
    todo = study.plan(experiments, batch_one=batch_one, repeats=repeats, runs=runs, studies=saved or [])
    studies = [s for s in saved or [] if s.kind == "study"]
    active = sweeps.any_active(studies, registry, runs)  # with the runs: see saved_section
    chosen = study_actions(todo, active, (registry, root, runs_dir, tuple(experiments), batch_one, repeats))
    total_note = st.empty() if chosen else None
    study_table(runs, experiments, studies, active)
    probes = probe_fn(registry, wait_idle=True)  # a probe beside a study's run would change its time

    def estimates() -> None:
        if long_note is not None:
            with long_note.container(), st.spinner("Estimating the batch-size-1 rows…"):
                eta = sweeps.time_estimate(long_rows, runs, root, probes)
            why = (eta.first_error or "").rstrip(".")
            long_note.caption(
                f"Cannot estimate the batch-size-1 rows: {why}." if why else
                f"The {len(long_rows)} batch-size-1 rows take about {report.seconds(eta.seconds)} "
                "(one step per image). Leave them out for a quick table."
            )
        if total_note is not None:
            with total_note.container(), st.spinner("Estimating the time of each run…"):
                total = sweeps.time_estimate(chosen, runs, root, probes)
            total_note.caption(_total_caption(len(chosen), total, registry.max_concurrent))

    return estimates


def study_actions(todo: study.Plan, active: bool, args: tuple[Any, ...]) -> list[RunConfig]:
    """The study's button(s) and a line on what they do; returns what the first one trains.

    Nothing beside a running study; else a stopped study's runs left (Resume); else the runs the
    table lacks, with "Train all N again" beside them; else all of them (again). ``args``: what
    :func:`start_study` takes before ``missing_only``.
    """
    registry, root, runs_dir = args[:3]
    stopped = None if active else todo.stopped
    chosen = [] if active else list(todo.left if stopped else todo.missing or todo.chosen)
    again = f"Train all {len(todo.chosen)} again"
    with st.container(horizontal=True):
        if stopped is not None:
            runs_left = f"{len(todo.left)} run{'s' if len(todo.left) != 1 else ''} left"
            st.button(f"Resume the stopped study ({runs_left})", type="primary",
                      on_click=resume_sweep, args=(stopped, registry, root, runs_dir), key=f"{K}resume_study")
        elif todo.trained and todo.missing:
            st.button(f"Train the {len(todo.missing)} missing runs", type="primary", disabled=active,
                      on_click=start_study, args=(*args, True), key=f"{K}start_study")
        else:
            label = again if todo.trained else f"Reproduce the study ({len(todo.chosen)} runs)"
            st.button(label, type="primary", disabled=not chosen, on_click=start_study, args=(*args, False),
                      key=f"{K}start_study")
        if todo.trained and (todo.missing or stopped is not None):
            st.button(again, on_click=start_study, args=(*args, False), disabled=active,
                      key=f"{K}again_study",
                      help="Measure every run again; the newest run of each row and seed gives the table its "
                      "figures.")  # fmt: skip
    if active:
        st.caption("The study is training: its progress is below, under Sweeps. Its table fills in as "
                   "its runs finish; more rows or seeds can be added once it is done.")
    elif stopped is not None:
        st.caption("A study reproduction was stopped before its end: resuming it keeps its finished runs "
                   "and continues a stopped one from its checkpoint. Add rows or seeds once it is done.")
    elif todo.missing and todo.trained:
        are = "is" if todo.trained == 1 else "are"
        st.caption(f"{todo.trained} of the {len(todo.chosen)} runs {are} trained already: the missing ones "
                   "fill in the table, the others keep their figures.")
    elif todo.trained:
        st.caption(f"All {len(todo.chosen)} runs of the chosen rows are trained. Train them again to "
                   "measure again, or add seeds per row to tell a real difference from seed noise.")
    return chosen


def _total_caption(n: int, total: sweeps.TimeEstimate, at_once: int) -> str:
    at_once_note = (
        f" {at_once} train at once (Train page, Settings): sooner in all, each row's time measured beside "
        "another." if at_once > 1 else
        " Two at once (Train page, Settings) finish sooner on 2 cores; each row's time is then measured "
        "beside the other."
    )
    why = f": {total.first_error.rstrip('.')}" if total.first_error else ""  # the sentence ends here
    if total.unknown == n:
        return f"The time of the {n} runs is not known yet{why}."
    which = f"{n - total.unknown} of the {n} runs take" if total.unknown else f"The {n} runs take"
    return (
        f"{which} about {report.seconds(total.seconds)} in all, one after another (each from past runs "
        "of the same model and batch size, else a short measurement here)"
        + (f"; the other {total.unknown} are not estimated{why}." if total.unknown else ".") + at_once_note
    )


def start_study(registry: JobRegistry, root: Path, runs_dir: Path, experiments: tuple[str, ...],
                batch_one: bool, repeats: int, missing_only: bool) -> None:
    try:
        started = sweeps.launch_study(experiments, registry, batch_one=batch_one, repeats=repeats,
                                      missing_only=missing_only, runs_dir=runs_dir, data_root=root)
    except MnistLabError as exc:
        flash(FLASH_KEY, "error", str(exc))
        return
    queued = f"Queued {started.queued} runs of the study. Progress is below, under Sweeps."
    flash(FLASH_KEY, "success", queued)


def _live_s() -> float:
    """How often a running sweep's fragments rerun: seldom where the running run's chart streams."""
    return SERVED_LIVE_S if live_route.served() else LIVE_S


def _live_curves(job: Job, registry: JobRegistry) -> None:
    """The running run's live learning curves: from the route (the element asks for a rerun of the rows
    when the run ends), else redrawn by the rows' fragment."""
    key = f"{K}live_{job.id}"
    if live_route.served():
        polled_job_curves(job, key, registry, height=220, status=False)
    else:
        live_job_curves(job, key=key)


def study_table(
    runs: list[RunInfo], experiments: list[str], studies: list[sweeps.Sweep], active: bool
) -> None:
    """Ours beside the published figures, redrawn while a study reproduction runs (:func:`_live_s`)."""

    @st.fragment(run_every=_live_s() if active else None)
    def live_table() -> None:
        current = _runs() if active else runs  # rows fill in as the study's runs finish
        _draw_study_table(study.table(current, experiments or study.EXPERIMENTS, studies=studies))

    live_table()


def _draw_study_table(rows: list[dict[str, Any]]) -> None:
    frame = pd.DataFrame(rows)
    done = int(frame["run_id"].notna().sum())
    st.subheader(f"Ours beside the published figures ({done} of {len(rows)} rows trained)")
    frame["source"] = [f"runs?run={i}" if i else None for i in frame["run_id"]]
    st.dataframe(
        frame.drop(columns=list(sweep_view.STUDY_HIDDEN)), hide_index=True, width="stretch",
        placeholder=EMPTY,
        column_config=sweep_view.study_columns(),
    )
    st.caption(
        "Times: training time of both epochs for the width and depth rows (as the blog's tables), "
        "seconds per epoch for the others. FLOPs: the blog's MLP figures count 2 per multiply-add, "
        "which is 2 x fvcore's MACs (ours); its LeNet-5 figure is a hand formula that also counts "
        "pooling, so that row does not compare like for like. Published times come from the "
        "author's laptop; ours from this machine."
    )


# -- grids ----------------------------------------------------------------------------


def grid_section(registry: JobRegistry, root: Path, runs_dir: Path, runs: list[RunInfo]) -> None:
    c1, c2, c3 = st.columns(3, gap="large")
    depths = c1.multiselect("Depths (hidden layers)", DEPTHS, default=[1, 2], key=f"{K}depths",
                            persist_state=SESSION)
    widths = c1.multiselect("Widths (units per layer)", WIDTHS, default=[128, 512], key=f"{K}widths",
                            persist_state=SESSION)
    batches = c2.multiselect("Batch sizes", BATCH_SIZES, default=[64], key=f"{K}batches",
                             persist_state=SESSION)
    lrs = c2.multiselect("Learning rates", LEARNING_RATES, default=[1e-3], key=f"{K}lrs",
                         format_func=lambda v: f"{v:g}", persist_state=SESSION)
    models = c3.multiselect("Models", ["mlp", "cnn"], default=["mlp"], key=f"{K}models",
                            format_func=str.upper, persist_state=SESSION)
    datasets = c3.multiselect("Datasets", ["mnist", "fashion"], default=["mnist"], key=f"{K}datasets",
                              format_func={"mnist": "MNIST", "fashion": "Fashion-MNIST"}.get,
                              persist_state=SESSION)
    c4, c5, c6 = st.columns(3, gap="large")
    repeats = c4.number_input("Seed repeats per point", 1, sweeps.MAX_REPEATS, 1, key=f"{K}repeats",
                              persist_state=SESSION,
                              help="Two or more tell whether a difference is larger than the seed noise.")
    epochs = c5.number_input("Epochs per run", 1, 50, 1, key=f"{K}epochs", persist_state=SESSION)
    name = c6.text_input("Sweep name", value="Depth x width", key=f"{K}name", max_chars=80)
    spec = sweeps.GridSpec(depth=tuple(depths), width=tuple(widths), batch_size=tuple(batches),
                           lr=tuple(lrs), model=tuple(models), dataset=tuple(datasets), repeats=int(repeats))
    try:
        configs = sweeps.grid_configs(RunConfig(epochs=int(epochs)), spec)
    except MnistLabError as exc:
        st.error(str(exc))
        return
    eta = sweeps.time_estimate(configs, runs, root)  # past runs only: a large grid reruns this each click
    unknown = eta.unknown
    if unknown == len(configs):
        st.caption(f"{len(configs)} runs. No past run of these models yet: the time left shows once "
                   "the first one finishes.")
    else:
        st.caption(f"{len(configs)} runs, about {report.seconds(eta.seconds)} from past runs of the same "
                   "models"
                   + (f", plus {unknown} runs not estimated yet." if unknown else "."))
    on_ray, address, budget = False, None, None
    if raytrials.ray_available():
        on_ray = st.checkbox("Run the trials on a Ray cluster", key=f"{K}ray")
        if on_ray:
            address = st.text_input("Ray address (empty: $RAY_ADDRESS, else a local Ray)",
                                    value=raytrials.ray_address() or "", key=f"{K}ray_address") or None
            budget = _search_budget()
    label = "Start the search" if budget is not None else "Start the sweep"
    st.button(f"{label} ({len(configs)} runs)", type="primary", on_click=start_grid,
              args=(registry, root, runs_dir, configs, name, on_ray, address, budget), key=f"{K}start_grid")


def _search_budget() -> float | None:
    """None for the whole grid; else the search's budget in seconds per epoch (0: no budget)."""
    if not st.checkbox("Budgeted search: stop the trials that trail (ASHA on Ray Tune)", key=f"{K}search",
                       help="Trains every configuration under the budget for an epoch, then only the best "
                            "third goes on at each rung, compared after the same number of images. Keep the "
                            "whole grid to reproduce a study: early stopping would bias its tables."):
        return None
    return float(st.number_input("Budget: seconds per epoch (0: no budget)", 0.0, 3600.0, 0.0,
                                 key=f"{K}budget", help="Configurations estimated to take longer per epoch "
                                                        "are left out (the Train page's estimate)."))


def start_grid(registry: JobRegistry, root: Path, runs_dir: Path, configs: list[RunConfig], name: str,
               on_ray: bool, address: str | None, budget: float | None = None) -> None:
    try:
        if budget is not None:
            found, over = search.launch(configs, name, budget, registry, address=address, runs_dir=runs_dir,
                                        data_root=root, probe_fn=probe_fn(registry))
            left_out = f" ({len(over)} over the budget left out)" if over else ""
            flash(FLASH_KEY, "success", f"Searching {len(found.configs)} configurations of "
                                        f"{literal(found.name)} on Ray{left_out}.")
            return
        started = sweeps.launch(configs, name, registry, runs_dir=runs_dir, data_root=root, on_ray=on_ray,
                                address=address)
    except MnistLabError as exc:
        flash(FLASH_KEY, "error", str(exc))
        return
    sweep = started.sweep
    if started.on_ray:
        flash(FLASH_KEY, "success", f"Sent {len(configs)} trials of {literal(sweep.name)} to Ray.")
    else:
        flash(FLASH_KEY, "success", f"Queued {started.queued} runs of {literal(sweep.name)}.")


# -- saved sweeps: progress, stop, resume, charts -------------------------------------------------


def saved_section(registry: JobRegistry, root: Path, runs_dir: Path, runs: list[RunInfo],
                  saved: list[sweeps.Sweep] | None) -> None:
    st.divider()
    st.subheader("Sweeps")
    if saved is None:
        return  # the error is already on the page
    # With the runs drawn: one listed "running" just before its job ended (a Stop) keeps the rows
    # polling until they see it end, instead of showing it running, with no Stop, for good.
    active = sweeps.any_active(saved, registry, runs)
    if not active:
        _watch_idle(registry, runs_dir, saved, runs)
    if not saved:
        st.caption("No sweep yet.")
        return
    first: list[tuple[str, tuple[str, ...]]] = []  # what the panel's first run saw, in this page run

    @st.fragment(run_every=_live_s() if active else None)
    def progress_panel() -> None:
        # From its second run on: a run started or ended, here (the running run's element asks for
        # this fragment's rerun when it does) or in another process, or the sweeps stopped or ended:
        # the whole page, so the study table and the sweep's charts show it. Never at the first run,
        # inside the page run: a job that starts meanwhile (a click's) would rerun it and lose the
        # click's message, and the rows are drawn from a fresh listing anyway.
        current = _runs() if active else runs  # only a live panel needs a fresh listing each second
        seen = (page_state(registry), sweeps.states(saved, current))
        if not first:
            first.append(seen)
        elif seen != first[0] or sweeps.any_active(saved, registry, current) != active:
            st.rerun()
        for sweep in saved[:10]:
            sweep_row(sweep, registry, root, runs_dir, current)

    progress_panel()
    # Short enough for a phone (390 px cut the whole id short); the id's tail tells same-named sweeps apart.
    labels = {s.id: f"{s.name} · {len(s.configs)} runs · {s.id[-4:]}" for s in saved}
    chosen = st.selectbox("Charts of the sweep", list(labels), format_func=labels.get, key=f"{K}chart_sweep")
    sweep = next(s for s in saved if s.id == chosen)
    if sweep.kind == "study":
        st.caption("A study reproduction: its results are the table above.")
    else:
        sweep_view.render(sweep, runs, key=f"{K}view")


def _watch_idle(registry: JobRegistry, runs_dir: Path, saved: list[sweeps.Sweep],
                runs: list[RunInfo]) -> None:
    """Nothing of the sweeps trains: a fragment that draws nothing and reruns the page once a sweep
    appears or one of its runs starts (``python -m mnist_core sweep`` beside the app, another tab)."""
    drawn = ([s.id for s in saved], sweeps.states(saved, runs))
    ticked: list[bool] = []  # empty at its first run, inside the page run: a rerun there loses messages

    @st.fragment(run_every=IDLE_POLL_S)
    def watch() -> None:
        if not ticked:
            ticked.append(True)
            return
        try:
            now = sweeps.list_sweeps(runs_dir)
            seen = ([s.id for s in now], sweeps.states(now, scan_runs()[0]))  # quiet: no warning each time
        except OSError:
            return  # the page run that follows says why
        if seen != drawn or sweeps.any_active(now, registry):
            st.rerun()

    watch()


def sweep_row(sweep: sweeps.Sweep, registry: JobRegistry, root: Path, runs_dir: Path,
              runs: list[RunInfo]) -> None:
    now = sweeps.live(sweep, registry, runs, data_root=root, probe_fn=probe_fn(registry, wait_idle=True))
    p, jobs, running, on_ray = now.progress, now.jobs, now.running, now.on_ray
    with st.container(border=True):
        left, right = st.columns([4, 1])
        left.markdown(f"{literal(sweep.name)} · {p.done}/{p.total} runs done · {p.status}"
                      + (" · on Ray" if on_ray else ""), help=sweeps.STATUS_HELP[p.status])
        left.progress(p.fraction)
        if jobs or on_ray:
            doing = f" Now: {running[0].config.label()} seed {running[0].config.seed}." if running else ""
            left.caption(f"ETA {report.seconds(p.eta_s)} ({p.eta_detail}).{doing} Queued: {now.queued}.")
            if running:
                with left:
                    _live_curves(running[0], registry)
            right.button("Stop", key=f"{K}stop_{sweep.id}", on_click=stop_sweep, args=(sweep, registry))
        elif p.status == "running":  # seen from a run folder: another process trains it
            left.caption("One of its runs is training in another process (such as "
                         "`python -m mnist_core sweep`): stop it there, then resume it here.")
        elif p.done < p.total:
            right.button("Resume", key=f"{K}resume_{sweep.id}", on_click=resume_sweep,
                         args=(sweep, registry, root, runs_dir))
        if now.ray_error:
            left.error(now.ray_error)


def stop_sweep(sweep: sweeps.Sweep, registry: JobRegistry) -> None:
    n = sweeps.stop(sweep, registry)
    stopping = f"Stopping {literal(sweep.name)} ({n} runs); finished runs are kept, Resume continues it."
    flash(FLASH_KEY, "info", stopping)


def resume_sweep(sweep: sweeps.Sweep, registry: JobRegistry, root: Path, runs_dir: Path) -> None:
    try:
        started = sweeps.start(sweep, registry, runs_dir=runs_dir, data_root=root)
    except MnistLabError as exc:
        flash(FLASH_KEY, "error", str(exc))
        return
    resumed = f"Resumed {literal(sweep.name)}: {started.queued} runs queued, finished runs kept."
    flash(FLASH_KEY, "success", resumed)


main()
