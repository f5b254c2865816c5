"""'Repeat with 3 seeds' on the Train page: three runs of one configuration, one row on the Runs page."""

from __future__ import annotations

from pathlib import Path

from mnist_core import seeds
from mnist_core.jobs import JobRegistry
from tests.support.apptest import open_app

REPEAT = f"Repeat with {seeds.REPEAT_SEEDS} seeds"


def test_repeat_with_three_seeds_queues_three_seeds_the_runs_page_groups(
    app_path: Path, registry: JobRegistry
) -> None:
    at = open_app(app_path, "pages/train.py", check=True)
    at.select_slider(key="train_width").set_value(16)
    at.number_input(key="train_epochs").set_value(1)
    at.number_input(key="train_seed").set_value(1)
    at.run()
    next(b for b in at.button if b.label == REPEAT).click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    jobs = registry.jobs()
    assert [j.config.seed for j in jobs] == [1, 0, 2]  # the chosen seed first, then the free ones
    assert len({seeds.group_key(j.config) for j in jobs}) == 1
    assert registry.wait(timeout=300), "the three tiny runs did not finish"
    assert [j.state for j in jobs] == ["completed"] * 3

    runs_page = open_app(app_path, "pages/runs.py", check=True)
    table = runs_page.dataframe[0].value
    assert len(table) == 1 and table.iloc[0]["n_seeds"] == 3
    assert table.iloc[0]["test_std"] >= 0
