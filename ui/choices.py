"""Pickers whose options are ids and whose labels can change under them (a run renamed, deleted, imported).

Not a page. Streamlit 1.67 sends a selectbox's or multiselect's choice over the
wire as its *label* (``format_func(option)``), and a widget with a ``key``
keeps its identity when its labels change. So after a run is renamed, the
browser keeps the old label on its chip and sends it back on the next
interaction; Streamlit finds no option with that label and keeps the label
itself as the value. Two things then go wrong:

- a ``format_func`` that is not total (``labels.get`` returns ``None`` for a
  value that is not an id) makes Streamlit write ``None`` into a protobuf
  string field: ``TypeError: bad argument type for built-in operation``
  (``SessionState.get_serialized``), and only a reload recovers;
- the chip keeps the old name, and a selectbox falls back to its first option.

:func:`labeller` is a ``format_func`` that always returns a string;
:func:`sync_multi` and :func:`sync_single`, called just before the widget,
map labels the browser sent back to ids, drop ids that are gone, and, when a
picked option's label changed, set the value again so the browser is sent
the current labels.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

import streamlit as st

MEMO = "_choice_labels_"  # + widget key: the labels (id -> label) the browser was last sent
FIRST = object()  # sync_single's default: the first option


def unique_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The same labels, with the full id appended where two would read alike (the wire needs them unique)."""
    seen: dict[str, int] = {}
    for text in labels.values():
        seen[text] = seen.get(text, 0) + 1
    return {i: text if seen[text] == 1 else f"{text} ({i})" for i, text in labels.items()}


def run_labels(rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Run id -> its label in a picker: the name and the end of the id (two runs may share a name)."""
    return unique_labels({r["id"]: f"{r['name']} · {r['id'][-6:]}" for r in rows})


def labeller(labels: Mapping[Any, str], empty: str = "—") -> Callable[[Any], str]:
    """A ``format_func`` that never fails and never returns anything but a string."""

    def label(value: Any) -> str:
        if value is None:
            return empty
        if isinstance(value, Hashable) and value in labels:
            return labels[value]
        return str(value)

    return label


def _to_id(value: Any, labels: Mapping[str, str], sent: Mapping[str, str]) -> str | None:
    """The id a widget value stands for: an id, or a label this page sent earlier; None when gone."""
    if isinstance(value, str) and value in labels:
        return value
    for run_id, text in sent.items():
        if text == value and run_id in labels:
            return run_id
    return None


def sync_multi(key: str, labels: Mapping[str, str]) -> None:
    """Before ``st.multiselect(options=list(labels), key=key)``: keep its value a list of present ids."""
    sent: Mapping[str, str] = st.session_state.get(MEMO + key, {})
    if key in st.session_state:
        value = list(st.session_state[key] or [])
        ids: list[str] = []
        for item in value:
            run_id = _to_id(item, labels, sent)
            if run_id is not None and run_id not in ids:
                ids.append(run_id)
        if ids != value or any(sent.get(i) != labels[i] for i in ids):
            st.session_state[key] = ids  # a value set by code is sent to the browser, labels and all
    st.session_state[MEMO + key] = dict(labels)


def sync_single(key: str, labels: Mapping[str, str], default: object = FIRST) -> None:
    """Before ``st.selectbox(options=list(labels), key=key)``: keep its value a present id.

    A value that is gone becomes ``default`` (the first option unless given),
    set here rather than left to Streamlit: then the browser is sent it too.
    """
    sent: Mapping[str, str] = st.session_state.get(MEMO + key, {})
    if key in st.session_state and st.session_state[key] is not None:
        value = st.session_state[key]
        run_id = _to_id(value, labels, sent)
        if run_id is None:
            st.session_state[key] = next(iter(labels), None) if default is FIRST else default
        elif run_id != value or sent.get(run_id) != labels[run_id]:
            st.session_state[key] = run_id
    st.session_state[MEMO + key] = dict(labels)


def pick_runs(rows: Iterable[Mapping[str, Any]], key: str, max_selections: int, first: int = 2) -> list[str]:
    """A multiselect of runs by id (labels kept current), the first ``first`` picked on the first visit."""
    labels = run_labels(rows)
    st.session_state.setdefault(key, list(labels)[:first])
    sync_multi(key, labels)
    return st.multiselect(
        "Runs", list(labels), max_selections=max_selections, format_func=labeller(labels), key=key
    )

