"""Driving the app's pages through Streamlit's AppTest: open, read, rerun until, and the ``app_path`` fixture.

Conftests that need ``app_path`` import it (``from tests.support.apptest import
app_path``); pytest then offers it to their tests like any fixture.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime.forward_msg_queue import ForwardMsgQueue
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
TEXT_KINDS = ("markdown", "info", "success", "warning", "error", "caption")


@contextmanager
def fresh_caches() -> Iterator[None]:
    """Streamlit's caches cleared before and after: ``st.cache_resource`` outlives an AppTest.

    Without this, one test's job registry (and its jobs) or cached model
    would show up in the next.
    """
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        yield
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()


@pytest.fixture
def app_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """app.py, with ui/ importable as the app finds it (beside app.py), and fresh Streamlit caches."""
    monkeypatch.syspath_prepend(str(ROOT))
    with fresh_caches():
        yield APP


def no_exception(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_app(
    app_path: Path | str, page: str | None = None, *, timeout: float = 30, check: bool = False
) -> AppTest:
    """The app (``page``: ``"pages/x.py"``, else the default page) after one script run.

    ``check``: fail at once on an exception. The default timeout is long
    because importing torch alone takes seconds on a busy machine.
    """
    at = AppTest.from_file(str(app_path), default_timeout=timeout)
    if page is not None:
        at.switch_page(page)
    at.run()
    return no_exception(at) if check else at


def page_text(at: AppTest, *, subheaders: bool = False, buttons: bool = False, progress: bool = False) -> str:
    """What a reader sees as text: markdown, alerts and captions; optionally subheaders, buttons, progress."""
    kinds = TEXT_KINDS + (("subheader",) if subheaders else ())
    parts = [str(el.value) for kind in kinds for el in at.get(kind)]
    if buttons:
        parts += [str(button.label) for button in at.button]
    if progress:
        parts += [str(getattr(el.proto, "text", "")) for el in at.get("progress")]
    return "\n".join(parts)


def run_until(
    at: AppTest,
    done: Callable[[AppTest], bool],
    timeout_s: float = 60,
    describe: Callable[[AppTest], str] = page_text,
) -> AppTest:
    """Rerun (each rerun runs a polling fragment once) until ``done(at)``; fails on timeout or exception.

    On timeout the message is ``describe(at)``: what the page showed.
    """
    deadline = time.monotonic() + timeout_s
    while not done(at):
        assert time.monotonic() < deadline, describe(at)
        no_exception(at)
        time.sleep(0.25)
        at.run()
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def open_runs_view(app_path: Path | str, view: str, chosen: list[str], **state: object) -> AppTest:
    """The Runs page showing ``view`` for the runs ``chosen`` (and any other ``state``), without error."""
    at = AppTest.from_file(str(app_path), default_timeout=60)
    at.switch_page("pages/runs.py")
    at.session_state["runs_selected"] = chosen
    at.session_state["runs_view"] = view
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    return at


class Sent:
    """The messages of the latest script run (test's process: AppTest runs the page in a thread)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.msgs: list[ForwardMsg] = []
        original = ForwardMsgQueue.enqueue

        def enqueue(queue: ForwardMsgQueue, msg: ForwardMsg) -> None:
            self.msgs.append(msg)
            original(queue, msg)

        monkeypatch.setattr(ForwardMsgQueue, "enqueue", enqueue)

    def run(self, at: AppTest) -> AppTest:
        self.msgs.clear()
        return at.run()

    def by_fragment(self) -> tuple[dict[str, float], dict[str, list[str]]]:
        """Each fragment's rerun interval, and what it draws: element types, ``bidi_component:<key id>``."""
        intervals = {
            m.auto_rerun.fragment_id: m.auto_rerun.interval for m in self.msgs if m.HasField("auto_rerun")
        }
        drawn: dict[str, list[str]] = defaultdict(list)
        for m in self.msgs:
            if not m.HasField("delta") or not m.delta.fragment_id:
                continue
            delta = m.delta
            kind = delta.WhichOneof("type")
            what = delta.new_element.WhichOneof("type") if kind == "new_element" else kind
            if what == "bidi_component":
                what += ":" + delta.new_element.bidi_component.id
            drawn[delta.fragment_id].append(what)
        return intervals, drawn
