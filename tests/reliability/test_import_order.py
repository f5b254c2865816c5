"""pandas is fully imported on the script thread before any other thread imports codecarbon.

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
import importlib.abc, json, sys
from streamlit.testing.v1 import AppTest

def pandas_complete():
    pandas = sys.modules.get("pandas")
    spec = getattr(pandas, "__spec__", None)
    return (pandas is not None and not getattr(spec, "_initializing", False)
            and hasattr(pandas, "DataFrame") and hasattr(pandas, "Series"))

seen = {}
class Watch(importlib.abc.MetaPathFinder):  # when codecarbon is first imported, on whatever thread
    def find_spec(self, name, path=None, target=None):
        if name == "codecarbon" and name not in seen:
            seen[name] = pandas_complete()
        return None
sys.meta_path.insert(0, Watch())

at = AppTest.from_file(sys.argv[1], default_timeout=60)
at.switch_page("pages/train.py")
at.run()
from mnist_core import energy
energy.warm_up().join(timeout=120)  # codecarbon's warm-up (started when the app opened) has imported it
print(json.dumps({
    "exception": [str(e.value) for e in at.exception],
    "pandas_complete": pandas_complete(),
    "codecarbon_imported": "codecarbon" in sys.modules,
    "pandas_complete_before_codecarbon": seen.get("codecarbon"),
}))
"""

def test_pandas_is_complete_before_any_thread_imports_codecarbon(runs_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    proc = subprocess.run(
        [sys.executable, "-c", CHECK, str(ROOT / "app.py")], capture_output=True, text=True, timeout=180,
        env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["exception"] == []
    # The app warms codecarbon up in a background thread when it opens (issue 28): by then the script
    # thread has imported pandas whole (app.py), so that thread never sees a half-imported one.
    assert result["codecarbon_imported"] and result["pandas_complete"], result
    assert result["pandas_complete_before_codecarbon"] is True, result
