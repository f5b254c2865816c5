"""The issue's quality figures, in a real browser with the quick default model on the real MNIST.

Marked ``realdata``: skipped unless ``MNIST_DATA_DIR`` points at the real
MNIST. Trains the quick default model, draws 20 digits with mouse strokes
(two per class, as a person draws them) and requires at least 90% of them
read correctly; then draws a "continental" 1 with a long flag, which
MNIST-trained models read as a 7, corrects it, and requires that the
corrected version reads that drawing as a 1 with test accuracy (full test
set) down by at most 0.3 points. The figures go to ``artifacts/draw-quality.json``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from draw_helpers import DIGITS, FLAGGED_ONE, DrawPage, versions_of
from playwright.sync_api import Page

from mnist_core import runs
from mnist_core.config import quick_default

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.realdata]


class TestQuickModelOnRealMnist:
    @pytest.fixture
    def synthetic_data_dir(self, real_data_dir: Path) -> Path:
        """The ``server`` fixture serves this data root: here, the real MNIST."""
        return real_data_dir

    @pytest.fixture
    def quick_run(self, runs_dir: Path, real_data_dir: Path) -> runs.RunInfo:
        from mnist_core.pipeline import run_training

        return run_training(quick_default(), runs_dir=runs_dir, data_root=real_data_dir)

    def test_mouse_drawn_digits_are_read_and_one_correction_sticks(
        self, quick_run: runs.RunInfo, page: Page, server: str, runs_dir: Path, artifacts_dir: Path
    ) -> None:
        draw = DrawPage(page, server)
        draw.open()
        readings = []
        for digit, variants in DIGITS.items():
            for strokes in variants:
                label, confidence = draw.draw(strokes)
                readings.append({"digit": digit, "read": label, "confidence": confidence})
                draw.reset()
        right = sum(r["digit"] == r["read"] for r in readings)
        label, _ = draw.draw(FLAGGED_ONE)  # left on the canvas for the correction
        report = {
            "run": quick_run.id,
            "test_accuracy": quick_run.test_accuracy,
            "drawn": len(readings),
            "read_correctly": right,
            "rate": right / len(readings),
            "readings": readings,
            "flagged_one_read_as": label,
        }
        assert right / len(readings) >= 0.9, report
        assert label != 1, f"the flagged 1 was read correctly, there is nothing to correct: {report}"
        draw.teach(1)
        draw.no_exception()
        [version] = versions_of(runs_dir, quick_run.id)
        page.get_by_text(f"{version.name} reading your drawing (1 stroke)").wait_for()
        after = int(draw.metric("Prediction"))
        details = version.meta["details"]
        drop = 100 * (details["accuracy_before"] - details["accuracy_after"])
        report |= {"after_correction_read_as": after, "correction": details, "accuracy_drop_points": drop}
        (artifacts_dir / "draw-quality.json").write_text(json.dumps(report, indent=1))
        page.screenshot(path=str(artifacts_dir / "draw-real-corrected.png"), full_page=True)
        assert after == 1 and details["predicted_after"] == 1, report
        assert details["eval_size"] == 10_000
        assert drop <= 0.3, report
        shown = draw.metric("Test accuracy")
        assert re.fullmatch(r"\d+\.\d\d%", shown)
