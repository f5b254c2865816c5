"""Chart hover text of a run (or of a configuration run with several seeds): UI wording, Plotly HTML.

Plotly breaks lines with ``<br>``; its labels accept ``<a href>``, ``<b>`` and
``<span style>``, so a run's name (a user's or an imported file's text) is
HTML-escaped and shows as typed.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from mnist_core.curves import number
from mnist_core.seeds import N_KEY, std_key


def hover_text(row: Mapping[str, Any]) -> str:
    """A run's configuration in one short paragraph; a seed group's accuracy as mean ± std of n seeds."""
    shape = f"depth {row.get('depth')} · width {row.get('width')}"
    if row.get("channels"):  # a CNN: its convolutions, then its dense layers
        shape = f"conv channels {row['channels']} · dense {row.get('depth')} x {row.get('width')}"
    lr = number(row.get("lr"))
    lines = [
        f"<b>{html.escape(str(row.get('name')))}</b>",
        html.escape(str(row.get("architecture"))),
        f"{shape} · batch {row.get('batch_size')}",
        f"{row.get('epochs')} epochs · {row.get('optimizer')} lr {lr if lr is None else f'{lr:g}'} "
        f"· {row.get('schedule')}",
        accuracy_line(row),
    ]
    return "<br>".join(lines)


def accuracy_line(row: Mapping[str, Any]) -> str:
    acc = number(row.get("test_accuracy"))
    if acc is None:
        return "no test accuracy"
    n, std = int(row.get(N_KEY) or 1), number(row.get(std_key("test_accuracy")))
    if n > 1 and std is not None:
        return f"test accuracy {acc:.2%} ± {std * 100:.2f} points (mean ± std of {n} seeds)"
    return f"test accuracy {acc:.2%}"
