"""The JSON route a live learning curve polls for its new points: no Streamlit rerun per update.

Not a page. ``app.py`` serves :data:`ROUTES` with ``st.App`` (Streamlit 1.67:
``streamlit run app.py`` finds ``app = st.App(...)`` and serves the app with
these routes beside it). A page that draws a running job's live chart calls
:func:`expose` for that job; the chart (``live_chart_assets/live_chart.js``)
then fetches ``GET /_live/<job id>?from=N`` twice a second and appends what it
gets in place: a redraw costs the browser the chart's few milliseconds instead
of a fragment rerun, which re-renders the page (issue 22).

:func:`served` says whether this process serves the route (not under AppTest,
nor when a page file is run on its own): without it the pages keep redrawing
the chart from a fragment. Nothing here calls Streamlit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mnist_core.curves import Point, merge_history
from mnist_core.jobs import Job
from ui.live_chart import learning_curve_view, payload, steps_per_epoch

PREFIX = "/_live/"
MAX_EXPOSED = 64  # jobs remembered; the oldest is forgotten first
NO_STORE = {"Cache-Control": "no-store"}

_lock = threading.Lock()
_jobs: OrderedDict[str, tuple[Job, tuple[Point, ...]]] = OrderedDict()
_served = False


def url(job_id: str) -> str:
    """Where the chart of job ``job_id`` fetches its points."""
    return PREFIX + job_id


def served() -> bool:
    """True once :func:`routes` gave the route to the server of this process."""
    return _served


def expose(job: Job, saved: Sequence[Point] = ()) -> None:
    """Let the route serve ``job``'s points, after ``saved`` (the history of the run it resumes)."""
    with _lock:
        _jobs[job.id] = (job, tuple(saved))
        _jobs.move_to_end(job.id)
        while len(_jobs) > MAX_EXPOSED:
            _jobs.popitem(last=False)


def forget_all() -> None:
    """Serve no job (tests)."""
    with _lock:
        _jobs.clear()


def points_since(job_id: str, start: int) -> dict[str, Any] | None:
    """What ``?from=start`` answers for ``job_id``: None for a job not exposed.

    ``{"from", "n", "rows", "active", "per"}``: the rows of the points after
    the ``start`` the chart holds, per panel; when ``start`` is 0 or beyond the
    history, the whole history thinned (``from`` 0). ``active`` False: the job
    has ended and these are its last points. ``per``: optimizer steps per epoch
    (for the hover), None before the first point.
    """
    with _lock:
        entry = _jobs.get(job_id)
    if entry is None:
        return None
    job, saved = entry
    snap = job.snapshot()
    points = merge_history(saved, snap.events) if saved else list(snap.events)
    n = len(points)
    view = learning_curve_view()
    if 0 < start <= n:
        rows = view.rows(points[start:])
    else:
        start = 0
        rows, _ = payload(None, job_id, view, points)
        rows = rows["rows"]
    return {"from": start, "n": n, "rows": rows, "active": snap.active, "per": steps_per_epoch(points[:1])}


def live_points(request: Request) -> JSONResponse:
    """``GET /_live/<job id>?from=N``: the handler (sync: Starlette runs it off the event loop)."""
    job_id = request.path_params["job_id"]
    try:
        start = max(0, int(request.query_params.get("from", "0")))
    except ValueError:
        return JSONResponse({"error": "from must be a whole number"}, status_code=400, headers=NO_STORE)
    body = points_since(job_id, start)
    if body is None:
        return JSONResponse(
            {"error": f"No live job {job_id!r} here: open the Train page again."},
            status_code=404,
            headers=NO_STORE,
        )
    return JSONResponse(body, headers=NO_STORE)


def routes() -> list[Route]:
    """The routes ``app.py`` gives ``st.App``; from then on :func:`served` is True."""
    global _served
    _served = True
    return [Route(PREFIX + "{job_id}", live_points, methods=["GET"])]
