"""Sweeps page: reproduce the blog study in one click, run grids, see what each value did.

Thin UI: ``mnist_core.study`` knows the blog's rows and published figures,
``mnist_core.sweeps`` builds grids, queues their runs in the process-wide job
registry (the same queue as the Train page), reads which points are done and
weighs differences against the seed noise; ``ui.sweep_view`` draws a sweep's
charts. A sweep's runs are normal runs tagged ``sweep:<id>``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from mnist_core import data as core_data
from mnist_core import estimate, raytrials, study, sweeps
from mnist_core.config import RunConfig
from mnist_core.errors import MnistLabError
from mnist_core.jobs import JobRegistry
from mnist_core.runs import RunInfo, default_runs_dir, list_runs
from ui import sweep_view
from ui.shared import SESSION, duration, flash, job_registry, literal, ray_sweeps, show_flash
from ui.shell import require_shell

K = "sweeps_"
FLASH_KEY = f"{K}flash"
DEPTHS = list(range(1, 9))
WIDTHS = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
BATCH_SIZES = [1, 4, 16, 32, 64, 128, 256, 512, 1024]
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
LIVE_S = 1.0


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
    runs = _runs()
    study_tab, grid_tab = st.tabs(["Reproduce the study", "Grid sweep"])
    with study_tab:
        study_section(registry, root, runs_dir, runs)
    with grid_tab:
        grid_section(registry, root, runs_dir, runs)
    saved_section(registry, root, runs_dir, runs)


def _runs() -> list[RunInfo]:
    try:
        return list_runs()
    except OSError as exc:
        st.error(f"Cannot read the checkpoints folder: {exc}")
        return []


def _sizes(root: Path, cfg: RunConfig) -> estimate.SplitSizes:
    return estimate.split_sizes(cfg.dataset, cfg.val_fraction, root)


@st.cache_data(show_spinner=False, max_entries=64, ttl=3600)
def _probe_eta(cfg: RunConfig, n_train: int, n_val: int) -> float:
    """Measured estimate of a whole run (all epochs) for configs no past run tells about."""
    sizes = estimate.SplitSizes(n_train, n_val, True)
    cost = estimate.cost_preview(cfg)
    epoch = estimate.from_probe(cfg, estimate.probe(estimate.probe_config(cfg), cost.macs), sizes)
    return epoch.seconds * cfg.epochs


def run_eta(cfg: RunConfig, runs: list[RunInfo], root: Path) -> float:
    sizes = _sizes(root, cfg)
    past = sweeps.point_eta_s(cfg, runs, sizes)
    return past if past is not None else _probe_eta(cfg, sizes.n_train, sizes.n_val)


# -- the study --------------------------------------------------------------------------------


def study_section(registry: JobRegistry, root: Path, runs_dir: Path, runs: list[RunInfo]) -> None:
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
    with c2:
        try:
            long_rows = [c for c in study.configs(experiments) if study.is_batch_one(c)]
            if long_rows:
                with st.spinner("Estimating the batch-size-1 rows…"):
                    eta = sum(run_eta(c, runs, root) for c in long_rows)
                st.caption(f"The {len(long_rows)} batch-size-1 rows take about {duration(eta)} "
                           "(one step per image). Leave them out for a quick table.")
        except MnistLabError as exc:
            st.caption(f"Cannot estimate the batch-size-1 rows: {exc}")
    chosen = study.configs(experiments, batch_one=batch_one)
    st.button(
        f"Reproduce the study ({len(chosen)} runs)", type="primary", disabled=not chosen,
        on_click=start_study, args=(registry, root, runs_dir, tuple(experiments), batch_one),
        key=f"{K}start_study",
    )
    study_table(runs, experiments)


def start_study(registry: JobRegistry, root: Path, runs_dir: Path, experiments: tuple[str, ...],
                batch_one: bool) -> None:
    configs = study.configs(experiments, batch_one=batch_one)
    try:
        sweep = sweeps.create(configs, "Reproduce the study", runs_dir, axes={}, kind="study",
                              extra={"experiments": list(experiments), "batch_one": batch_one})
        jobs = sweeps.submit(sweep, registry, list_runs(runs_dir), runs_dir=runs_dir, data_root=root)
    except MnistLabError as exc:
        flash(FLASH_KEY, "error", str(exc))
        return
    flash(FLASH_KEY, "success", f"Queued {len(jobs)} runs of the study. Progress is below, under Sweeps.")


def study_table(runs: list[RunInfo], experiments: list[str]) -> None:
    rows = study.table(runs, experiments or study.EXPERIMENTS)
    frame = pd.DataFrame(rows)
    done = int(frame["run_id"].notna().sum())
    st.subheader(f"Ours beside the published figures ({done} of {len(rows)} rows trained)")
    st.dataframe(
        frame.drop(columns=["run_id", "experiment"]), hide_index=True, width="stretch",
        column_config={
            "model": st.column_config.TextColumn("Model", pinned=True),
            "batch_size": st.column_config.NumberColumn("Batch"),
            "time_kind": st.column_config.TextColumn("Time is"),
            "published_accuracy_pct": st.column_config.NumberColumn("Acc % (blog)", format="%.1f"),
            "ours_accuracy_pct": st.column_config.NumberColumn("Acc % (ours)", format="%.2f"),
            "accuracy_ratio": st.column_config.NumberColumn("Acc ratio", format="%.3f",
                                                            help="ours / published; above 1 is better"),
            "published_time_s": st.column_config.NumberColumn("Time s (blog)", format="%.2f"),
            "ours_time_s": st.column_config.NumberColumn("Time s (ours)", format="%.2f"),
            "speedup": st.column_config.NumberColumn("Speed-up", format="%.1fx",
                                                     help="published time / our time, same kind of time"),
            "published_parameters": st.column_config.NumberColumn("Params (blog)", format="%d"),
            "ours_parameters": st.column_config.NumberColumn("Params (ours)", format="%d"),
            "published_flops": st.column_config.NumberColumn("FLOPs (blog)", format="%d"),
            "published_flops_convention": st.column_config.TextColumn("Blog FLOPs convention"),
            "ours_flops_2x_macs": st.column_config.NumberColumn("FLOPs ours (2 x MACs)", format="%d"),
            "ours_macs_fvcore": st.column_config.NumberColumn("MACs ours (fvcore)", format="%d"),
            "flops_ratio": st.column_config.NumberColumn("FLOPs ratio", format="%.2f"),
        },
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
    known = [sweeps.point_eta_s(c, runs, _sizes(root, c)) for c in configs]
    eta = sum(k for k in known if k is not None)
    unknown = sum(k is None for k in known)
    if unknown == len(configs):
        st.caption(f"{len(configs)} runs. No past run of these models yet: the time left shows once "
                   "the first one finishes.")
    else:
        st.caption(f"{len(configs)} runs, about {duration(eta)} from past runs of the same models"
                   + (f", plus {unknown} runs not estimated yet." if unknown else "."))
    ray_address = None
    if raytrials.ray_available():
        on_ray = st.checkbox("Run the trials on a Ray cluster", key=f"{K}ray")
        if on_ray:
            ray_address = st.text_input("Ray address (empty: $RAY_ADDRESS, else a local Ray)",
                                        value=raytrials.ray_address() or "", key=f"{K}ray_address") or "local"
    st.button(f"Start the sweep ({len(configs)} runs)", type="primary", on_click=start_grid,
              args=(registry, root, runs_dir, configs, name, ray_address), key=f"{K}start_grid")


def start_grid(registry: JobRegistry, root: Path, runs_dir: Path, configs: list[RunConfig], name: str,
               ray_address: str | None) -> None:
    try:
        sweep = sweeps.create(configs, name or "sweep", runs_dir)
        if ray_address is not None:
            address = None if ray_address == "local" else ray_address
            ray_sweeps().start(sweep, registry, address=raytrials.ray_address(address), runs_dir=runs_dir,
                               data_root=root)
            flash(FLASH_KEY, "success", f"Sent {len(configs)} trials of {literal(sweep.name)} to Ray.")
            return
        jobs = sweeps.submit(sweep, registry, list_runs(runs_dir), runs_dir=runs_dir, data_root=root)
    except MnistLabError as exc:
        flash(FLASH_KEY, "error", str(exc))
        return
    flash(FLASH_KEY, "success", f"Queued {len(jobs)} runs of {literal(sweep.name)}.")


# -- saved sweeps: progress, stop, resume, charts -------------------------------------------------


def saved_section(registry: JobRegistry, root: Path, runs_dir: Path, runs: list[RunInfo]) -> None:
    st.divider()
    st.subheader("Sweeps")
    try:
        saved = sweeps.list_sweeps(runs_dir)
    except OSError as exc:
        st.error(f"Cannot read the sweeps: {exc}")
        return
    if not saved:
        st.caption("No sweep yet.")
        return
    active = any(sweeps.sweep_jobs(s, registry) for s in saved) or ray_sweeps().any_running()

    @st.fragment(run_every=LIVE_S if active else None)
    def progress_panel() -> None:
        current = _runs() if active else runs  # only a live panel needs a fresh listing each second
        for sweep in saved[:10]:
            sweep_row(sweep, registry, root, runs_dir, current)
        still = any(sweeps.sweep_jobs(s, registry) for s in saved) or ray_sweeps().any_running()
        if still != active:
            st.rerun()

    progress_panel()
    labels = {s.id: f"{s.name} ({s.id})" for s in saved}
    chosen = st.selectbox("Charts of the sweep", list(labels), format_func=labels.get, key=f"{K}chart_sweep")
    sweep = next(s for s in saved if s.id == chosen)
    if sweep.kind == "study":
        st.caption("A study reproduction: its results are the table above.")
    else:
        sweep_view.render(sweep, runs, key=f"{K}view")


def sweep_row(sweep: sweeps.Sweep, registry: JobRegistry, root: Path, runs_dir: Path,
              runs: list[RunInfo]) -> None:
    jobs = sweeps.sweep_jobs(sweep, registry)
    running = [j for j in jobs if j.state == "running"]
    job_eta = sum((j.snapshot().eta_s or 0.0) for j in running)
    p = sweeps.progress(sweep, runs, _sizes(root, sweep.configs[0]), running_eta=job_eta)
    on_ray = ray_sweeps().running(sweep.id)
    with st.container(border=True):
        left, right = st.columns([4, 1])
        state = "running" if jobs or on_ray else ("done" if p.done == p.total else "paused")
        left.markdown(f"{literal(sweep.name)} · {p.done}/{p.total} runs done · {state}"
                      + (" · on Ray" if on_ray else ""))
        left.progress(p.fraction)
        if jobs or on_ray:
            now = f" Now: {running[0].config.label()} seed {running[0].config.seed}." if running else ""
            left.caption(f"ETA {duration(p.eta_s)} ({p.eta_detail}).{now} Queued: "
                         f"{sum(j.state == 'queued' for j in jobs)}.")
            right.button("Stop", key=f"{K}stop_{sweep.id}", on_click=stop_sweep, args=(sweep, registry))
        elif p.done < p.total:
            right.button("Resume", key=f"{K}resume_{sweep.id}", on_click=resume_sweep,
                         args=(sweep, registry, root, runs_dir))
        error = ray_sweeps().error(sweep.id)
        if error:
            left.error(error)


def stop_sweep(sweep: sweeps.Sweep, registry: JobRegistry) -> None:
    n = sweeps.stop(sweep, registry) + ray_sweeps().stop(sweep.id)
    stopping = f"Stopping {literal(sweep.name)} ({n} runs); finished runs are kept, Resume continues it."
    flash(FLASH_KEY, "info", stopping)


def resume_sweep(sweep: sweeps.Sweep, registry: JobRegistry, root: Path, runs_dir: Path) -> None:
    try:
        jobs = sweeps.submit(sweep, registry, list_runs(runs_dir), runs_dir=runs_dir, data_root=root)
    except MnistLabError as exc:
        flash(FLASH_KEY, "error", str(exc))
        return
    resumed = f"Resumed {literal(sweep.name)}: {len(jobs)} runs queued, finished runs kept."
    flash(FLASH_KEY, "success", resumed)


main()
