"""Energy and CO2 of runs shown side by side: one unit and one label per column (issue 21, item 9)."""

from __future__ import annotations

from mnist_core import report

MEASURED = {"energy_kwh": 0.00042, "co2_kg": 0.00016, "energy_estimated": False, "co2_country": "FRA"}
ESTIMATED = {"energy_kwh": 6.2e-7, "co2_kg": 2.3e-7, "energy_estimated": True, "co2_country": "FRA"}


def _items(summary: dict, peers: list[dict]) -> dict[str, str]:
    return {i.label: i.value for i in report.summary_items(summary, peers)}


def test_runs_side_by_side_share_the_unit_and_the_label_of_each_column() -> None:
    """One run read "Energy 0.42 Wh, CO2 0.16 g", the next "Energy (est.) 0.62 mWh, CO2 (est.) 0.23 mg"."""
    both = [MEASURED, ESTIMATED]
    first, second = _items(MEASURED, both), _items(ESTIMATED, both)
    assert (first["Energy"], first["CO2"]) == ("0.42 Wh", "0.16 g")
    assert (second["Energy"], second["CO2"]) == ("≈ 0.00062 Wh", "≈ 0.00023 g")
    labels = [i.label for i in report.summary_items(MEASURED)]
    assert labels == [i.label for i in report.summary_items(ESTIMATED)]
    alone = _items(ESTIMATED, [])  # on its own, the unit suits it
    assert (alone["Energy"], alone["CO2"]) == ("≈ 0.62 mWh", "≈ 0.23 mg")
    help_text = {i.label: i.help for i in report.summary_items(ESTIMATED)}
    assert help_text["Energy"].startswith("Estimated")


def test_the_unit_of_a_column_fits_its_largest_value() -> None:
    assert report.unit_for([0.5, 2e-6, None], report.CO2_UNITS) == ("g", 1e3)
    assert report.unit_for([3.0], report.CO2_UNITS) == ("kg", 1.0)
    assert report.unit_for([1e-9], report.ENERGY_UNITS) == ("mWh", 1e6)
    assert report.unit_for([None, "x"], report.ENERGY_UNITS) == ("Wh", 1e3)
    assert report.in_unit(None, ("g", 1e3)) == report.DASH
