"""The live progress text and the preview's step counts (issue 21, item 8)."""

from __future__ import annotations

import dataclasses

from mnist_core import report
from mnist_core.jobs import JobSnapshot

RUNNING = JobSnapshot(
    id="job-1", label="MLP 784-512-10 bs64", state="running", run_id="r", epoch=1, epochs=2, step=120,
    total_steps=1688, fraction=120 / 1688, loss=0.3, train_acc=0.9, val_acc=None, lr=1e-3,
    samples_per_s=9000.0, elapsed_s=1.0, eta_s=13.0, error=None,
)  # fmt: skip


def test_the_step_counter_says_it_counts_the_whole_run_as_the_preview_does() -> None:
    fraction, text = report.progress_line(RUNNING)
    assert text == "Epoch 1/2 · step 120 of 1,688 in all · 1.0 s elapsed, about 13 s left"
    assert fraction == RUNNING.fraction
    caption = report.steps_caption("MLP 784-512-10 bs64", 844, 2, 54_000)
    assert caption == (
        "MLP 784-512-10 bs64: 844 steps per epoch, 1,688 in the whole run (2 epochs), "
        "on 54,000 training images."
    )


def test_before_its_first_step_a_resumed_run_says_so_not_step_zero_of_zero() -> None:
    """Resume showed "Epoch 1/2 · step 0/0" until its first progress event."""
    blank = dataclasses.replace(RUNNING, epoch=0, step=0, total_steps=0, fraction=0.0, eta_s=None)
    _, text = report.progress_line(dataclasses.replace(blank, phase="starting", resuming=True))
    assert text == "Resuming from its last checkpoint…"
    _, text = report.progress_line(dataclasses.replace(blank, phase="starting"))
    assert "step" not in text and text.startswith("Starting")


def test_after_the_last_step_it_says_it_is_testing_and_measuring() -> None:
    """The page showed "about 0 s left" for seconds while the run was tested and measured."""
    done = dataclasses.replace(RUNNING, epoch=2, step=1688, fraction=1.0, eta_s=0.0, phase="finishing")
    fraction, text = report.progress_line(done)
    assert fraction == 1.0 and text.startswith("Evaluating on the test set and measuring costs…")
    assert "left" not in text
    _, text = report.progress_line(dataclasses.replace(RUNNING, stopping=True))
    assert "stopping, then evaluating on the test set" in text and "left" not in text


def test_a_queued_job_waits() -> None:
    queued = dataclasses.replace(RUNNING, state="queued", phase="queued")
    assert report.progress_line(queued) == (0.0, "Waiting to start…")
