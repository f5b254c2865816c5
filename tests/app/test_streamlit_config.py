"""The repository's Streamlit settings, as `streamlit run app.py` reads them from the project folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

READ_OPTION = """
from streamlit import config
config.get_config_options(force_reparse=True)
print(config.get_option("runner.postScriptGC"), config.get_where_defined("runner.postScriptGC"))
"""


def test_no_full_garbage_collection_after_each_rerun() -> None:
    """Streamlit's default collects all garbage after every script and fragment run.

    With torch, pandas and plotly loaded, one full collection took ~200 ms
    with the GIL held; the live view reruns twice a second, and a watched
    run of MLP 784-512-10 trained 2.8-2.9x slower than an unwatched one
    (``scripts/live_view_browser.py``). The option must be read from the
    project's own file, where ``make run`` and the browser tests start.
    """
    out = subprocess.run(
        [sys.executable, "-c", READ_OPTION], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", str(ROOT / ".streamlit" / "config.toml")]
