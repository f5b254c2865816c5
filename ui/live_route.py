"""The JSON route a running job's live view polls: new points and its status, no Streamlit rerun per update.

Not a page. ``app.py`` serves :func:`routes` with ``st.App`` (Streamlit 1.67:
``streamlit run app.py`` finds ``app = st.App(...)`` and serves the app with
these routes beside it). A page that draws a running job's live view calls
:func:`expose` for that job; its element (``live_chart_assets/live_chart.js``)
then fetches ``GET <base>/_live/<job id>?from=N`` twice a second and draws what
it gets in place: the new points of its chart, the progress bar and the
metrics. A redraw costs the browser a few milliseconds instead of a fragment
rerun, which re-renders the page (issue 22). When the job ends, or anything
else the page shows of the jobs changes (``page``), the element asks Streamlit
for one rerun.

``st.App`` mounts its own routes as given, not under ``server.baseUrlPath``
(Streamlit's routes are): :func:`routes` puts this one under the base path,
and the page hands the element a path relative to the app (:func:`url`), which
the JS resolves against the URL the app's own code was loaded from.

:func:`served` says whether this process serves the route (not under AppTest,
nor when a page file is run on its own): without it the pages keep redrawing
from fragments. Nothing here calls Streamlit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mnist_core import report
from mnist_core.curves import Point, merge_history
from mnist_core.jobs import Job, JobSnapshot
from ui.live_chart import learning_curve_view, payload, steps_per_epoch
from ui.live_layers import layer_stats_view, layers_of
from ui.shared import job_metric_values

PREFIX = "/_live/"
VIEWS = ("curves", "layers")  # ?view=: loss and accuracy (the default), per-layer statistics
MAX_EXPOSED = 64  # jobs remembered; the oldest is forgotten first
NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True)
class Exposed:
    """A job the route serves: the saved history it continues, and what else its page shows of the jobs."""

    job: Job
    saved: tuple[Point, ...] = ()
    page: Callable[[], str] | None = None


_lock = threading.Lock()
_jobs: OrderedDict[str, Exposed] = OrderedDict()
_served = False


def url(job_id: str, **query: str) -> str:
    """Where job ``job_id``'s live view fetches its points: relative to the app's base URL (no leading /)."""
    tail = "&".join(f"{k}={v}" for k, v in query.items())
    return PREFIX.lstrip("/") + job_id + (f"?{tail}" if tail else "")


def route_path(base_url_path: str | None) -> str:
    """The route's path under ``server.baseUrlPath`` (``"lab"`` -> ``/lab/_live/{job_id}``)."""
    base = (base_url_path or "").strip("/")
    return (f"/{base}" if base else "") + PREFIX + "{job_id}"


def served() -> bool:
    """True once :func:`routes` gave the route to the server of this process."""
    return _served


def expose(job: Job, saved: Sequence[Point] = (), page: Callable[[], str] | None = None) -> None:
    """Let the route serve ``job``'s points, after ``saved`` (the history of the run it resumes).

    ``page()``: what else the page shows of the jobs, as a string (the route
    answers it; the element asks for a rerun when it differs from the one it
    was drawn with).
    """
    with _lock:
        _jobs[job.id] = Exposed(job, tuple(saved), page)
        _jobs.move_to_end(job.id)
        while len(_jobs) > MAX_EXPOSED:
            _jobs.popitem(last=False)


def forget_all() -> None:
    """Serve no job (tests)."""
    with _lock:
        _jobs.clear()


def status(snap: JobSnapshot) -> dict[str, Any]:
    """What the progress bar and the metrics show: the texts of ``ui.shared``'s st.progress, st.metric.

    ``metrics``: ``[label, value, help]`` each, the learning rate last (a
    compact view leaves it out).
    """
    fraction, text = report.progress_line(snap)
    metrics = [[label, value, help_text] for label, value, help_text in job_metric_values(snap)]
    return {"fraction": fraction, "text": text, "metrics": metrics, "state": snap.state}


def page_state(job_id: str) -> str | None:
    """What the page that exposed ``job_id`` shows of the jobs now (None: nothing to watch)."""
    with _lock:
        entry = _jobs.get(job_id)
    return entry.page() if entry is not None and entry.page is not None else None


def points_since(job_id: str, start: int, view: str = "curves") -> dict[str, Any] | None:
    """What ``?from=start&view=view`` answers for ``job_id``: None for a job not exposed.

    ``{"from", "n", "rows", "active", "per", "status", "page"}``: the rows of
    the points after the ``start`` the chart holds, per panel; when ``start``
    is 0 or beyond the history, the whole history thinned (``from`` 0).
    ``active`` False: the job has ended and these are its last points.
    ``per``: optimizer steps per epoch (for the hover), None before the first
    point. ``status``: :func:`status`. ``page``: :func:`page_state`. The
    ``layers`` view also answers its ``panels`` with a whole history (they are
    known from the first point that has per-layer statistics); until then
    ``n`` stays 0.
    """
    with _lock:
        entry = _jobs.get(job_id)
    if entry is None:
        return None
    snap = entry.job.snapshot()
    points = merge_history(entry.saved, snap.events) if entry.saved else list(snap.events)
    body: dict[str, Any] = {"active": snap.active, "per": steps_per_epoch(points[:1])}
    body |= {"status": status(snap), "page": entry.page() if entry.page is not None else None}
    if view == "layers":
        first = next((layers for p in points if (layers := layers_of(p))), None)
        if first is None:
            return body | {"from": 0, "n": 0, "rows": []}
        chart = layer_stats_view(first, body["per"])
    else:
        chart = learning_curve_view()
    n = len(points)
    if 0 < start <= n:
        return body | {"from": start, "n": n, "rows": chart.rows(points[start:])}
    rows, _ = payload(None, job_id, chart, points)
    body |= {"from": 0, "n": n, "rows": rows["rows"]}
    if view == "layers":
        body["panels"] = rows["spec"]["panels"]
    return body


def live_points(request: Request) -> JSONResponse:
    """``GET <base>/_live/<job id>?from=N[&view=layers]``: the handler (sync: run off the event loop)."""
    job_id = request.path_params["job_id"]
    view = request.query_params.get("view", "curves")
    try:
        start = max(0, int(request.query_params.get("from", "0")))
    except ValueError:
        return JSONResponse({"error": "from must be a whole number"}, status_code=400, headers=NO_STORE)
    if view not in VIEWS:
        error = {"error": f"view must be one of {', '.join(VIEWS)}"}
        return JSONResponse(error, status_code=400, headers=NO_STORE)
    body = points_since(job_id, start, view)
    if body is None:
        return JSONResponse(
            {"error": f"No live job {job_id!r} here: open the Train page again."},
            status_code=404,
            headers=NO_STORE,
        )
    return JSONResponse(body, headers=NO_STORE)


def routes(base_url_path: str | None = None) -> list[Route]:
    """The routes ``app.py`` gives ``st.App``, under ``base_url_path``; then :func:`served` is True."""
    global _served
    _served = True
    return [Route(route_path(base_url_path), live_points, methods=["GET"])]
