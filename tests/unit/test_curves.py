"""Learning curves as columns, from live events or a saved history."""

from __future__ import annotations

import numpy as np

from mnist_core.curves import curve_columns, learning_curves, merge_history, thin
from mnist_core.train import ProgressEvent


def event(kind: str, step: int, loss: float = 1.0, val_acc: float | None = None) -> ProgressEvent:
    # 2 epochs of 10 steps: step 15 is 1.5 epochs in.
    epoch = (step - 1) // 10 + 1 if kind == "step" else step // 10
    return ProgressEvent(
        kind=kind, epoch=epoch, epochs=2, step=step, total_steps=20, samples=step * 8, loss=loss,
        train_acc=0.5, lr=1e-3, elapsed_s=step / 10, samples_per_s=80.0, eta_s=1.0,
        val_loss=None if val_acc is None else 0.3, val_acc=val_acc,
    )  # fmt: skip


EVENTS = [event("step", 5, 2.0), event("step", 10, 1.5), event("epoch", 10, 1.7, 0.8), event("step", 15, 1.0)]


def test_events_split_into_step_and_epoch_series_in_epochs() -> None:
    c = learning_curves(EVENTS)
    assert c.step_x.tolist() == [0.5, 1.0, 1.5]
    assert c.step_loss.tolist() == [2.0, 1.5, 1.0]
    assert c.epoch_x.tolist() == [1.0] and c.val_acc.tolist() == [0.8] and c.epoch_loss.tolist() == [1.7]
    assert not c.empty and learning_curves([]).empty


def test_saved_history_dicts_give_the_same_columns() -> None:
    from_dicts = learning_curves([{**e.to_dict(), "n": 8} for e in EVENTS])
    from_events = learning_curves(EVENTS)
    for name in ("step_x", "step_loss", "step_acc", "epoch_x", "val_loss", "val_acc"):
        assert np.array_equal(getattr(from_dicts, name), getattr(from_events, name)), name


def test_a_run_without_validation_has_nan_validation() -> None:
    c = learning_curves([event("epoch", 10, 1.0, None)])
    assert np.isnan(c.val_acc).all() and np.isnan(c.val_loss).all()


def test_long_runs_are_thinned_keeping_both_ends() -> None:
    assert thin(5, 10).tolist() == [0, 1, 2, 3, 4]
    kept = thin(10_000, 100)
    assert len(kept) == 100 and kept[0] == 0 and kept[-1] == 9_999
    many = [event("step", s) for s in range(1, 5_001)]
    assert len(learning_curves(many, max_points=300).step_x) == 300


def test_a_resumed_job_continues_its_saved_curve() -> None:
    saved = [e.to_dict() for e in EVENTS[:3]] + [{**EVENTS[3].to_dict(), "step": 12}]  # rewritten later
    live = [event("step", 12), event("step", 15)]
    merged = merge_history(saved, live)
    assert [p["step"] if isinstance(p, dict) else p.step for p in merged] == [5, 10, 10, 12, 15]
    assert merge_history(saved, []) == saved


def test_the_train_and_runs_pages_build_one_set_of_curve_columns() -> None:
    """Built twice (curves.learning_curves, curves.curve_columns): one choked on a damaged field."""
    saved = [e.to_dict() for e in EVENTS] + [{**EVENTS[3].to_dict(), "step": 17, "loss": "x"}]
    live, runs_page = learning_curves(saved), curve_columns(saved)
    assert live.step_x.tolist() == runs_page.train["epoch"].tolist() == [0.5, 1.0, 1.5, 1.7]
    assert np.array_equal(live.step_loss, runs_page.train["loss"], equal_nan=True)
    assert np.isnan(live.step_loss[-1])  # "x" is not a number: a gap, not a crash
    assert live.val_acc.tolist() == runs_page.val["accuracy"].tolist() == [0.8]
