"""The labels a real browser sends back for select widgets (not a test module).

Streamlit sends a selectbox's or multiselect's choice as its label, and the
browser keeps the labels it was last sent. AppTest instead re-sends labels
from the current options, so it cannot show what happens after a run is
renamed in another tab. The ``browser`` fixture (tests/app/conftest.py) makes
AppTest send what a real browser holds.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import InitialValue


class Browser:
    """The labels a real browser would send back for each select widget (by widget id)."""

    def __init__(self) -> None:
        self.shown: dict[str, list[str] | str] = {}

    def run(self, at: AppTest) -> AppTest:
        for w in at.multiselect:
            if w._value is not None or w.id not in self.shown:  # the user picked: labels of now
                self.shown[w.id] = list(w.values)
        for w in at.selectbox:
            if not isinstance(w._value, InitialValue) or w.id not in self.shown:
                self.shown[w.id] = w.format_func(w.value)
        at.run()
        for w in at.multiselect:
            if w.proto.set_value:
                self.shown[w.id] = list(w.proto.raw_values)
            elif w.id not in self.shown:
                self.shown[w.id] = [w.options[i] for i in w.proto.default]
        for w in at.selectbox:
            if w.proto.set_value:
                self.shown[w.id] = w.proto.raw_value
            elif w.id not in self.shown and w.options:
                self.shown[w.id] = w.options[w.proto.default]
        return at

    def chips(self, at: AppTest, key: str) -> list[str]:
        """The chips the browser shows in the multiselect ``key``."""
        return list(self.shown[at.multiselect(key=key).id])

    def shown_label(self, at: AppTest, key: str) -> str:
        """The label the browser shows in the selectbox ``key``."""
        return str(self.shown[at.selectbox(key=key).id])


def browser_fixture(monkeypatch: pytest.MonkeyPatch) -> Browser:
    """AppTest's select widgets send ``Browser.shown`` until a test sets a value itself."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState
    from streamlit.testing.v1 import element_tree

    b = Browser()
    multi, single = element_tree.Multiselect._widget_state, element_tree.Selectbox._widget_state

    def multi_state(self):
        if self._value is not None or self.id not in b.shown:
            return multi.fget(self)
        ws = WidgetState(id=self.id)
        ws.string_array_value.data[:] = b.shown[self.id]
        return ws

    def single_state(self):
        if not isinstance(self._value, InitialValue) or self.id not in b.shown:
            return single.fget(self)
        return WidgetState(id=self.id, string_value=b.shown[self.id])

    monkeypatch.setattr(element_tree.Multiselect, "_widget_state", property(multi_state))
    monkeypatch.setattr(element_tree.Selectbox, "_widget_state", property(single_state))
    return b
