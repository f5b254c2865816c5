"""pandas is fully imported on the script thread before any training job can start.

The root cause of the old flaky resume AppTest ("partially initialized module
'pandas'"): a job thread's first ``EnergyMeter`` imports codecarbon, which
imports pandas; meanwhile the Train page's live charts go through plotly,
whose validators look pandas up with ``sys.modules.get("pandas")`` (no
import lock) and get the half-initialised module. With a half-imported
pandas in ``sys.modules``, ``plotly.io.to_json`` of the page's figures raises
``AttributeError: partially initialized module 'pandas' has no attribute
'Series'`` every time. The fix is import order: ``app.py`` imports pandas
before any page (hence any job) runs. This test holds that invariant for the
Train page, in a fresh interpreter so that nothing imported it earlier.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECK = r"""
import json, sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=60)
at.switch_page("pages/train.py")
at.run()
pandas = sys.modules.get("pandas")
spec = getattr(pandas, "__spec__", None)
print(json.dumps({
    "exception": [str(e.value) for e in at.exception],
    "pandas_imported": pandas is not None,
    "pandas_complete": pandas is not None and not getattr(spec, "_initializing", False)
                       and hasattr(pandas, "DataFrame") and hasattr(pandas, "Series"),
    "codecarbon_imported": "codecarbon" in sys.modules,
}))
"""


def test_the_train_page_has_a_complete_pandas_before_any_job_starts(runs_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    proc = subprocess.run(
        [sys.executable, "-c", CHECK, str(ROOT / "app.py")], capture_output=True, text=True, timeout=180,
        env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["exception"] == []
    assert not result["codecarbon_imported"], "no job ran: pandas must come from the script thread"
    assert result["pandas_imported"] and result["pandas_complete"], result
