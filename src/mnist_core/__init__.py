"""MNIST Lab's core: data, models, training, metrics, runs and inference.

Knows nothing of Streamlit; the app in ``app.py``/``pages/`` and the CLI
(``python -m mnist_core``) are its two front ends.
"""

import os

# Before torch is imported: OpenMP threads that spin 300k cycles waiting for
# work collapse (40-75x slower steps) when a second busy process or thread
# shares the 2 cores, as when the app trains and predicts at once. A short
# spin avoids that at a small cost on a quiet machine (see the benchmark).
os.environ.setdefault("GOMP_SPINCOUNT", "1000")
# Measured and left out (2026-12-05): OMP_WAIT_POLICY=ACTIVE as well, which keeps
# this short spin when libgomp manages more threads than CPUs (it cuts it to 100
# then). It made a job's thread as fast as the main thread once the main thread
# had run torch ops (1.45x before), which neither the app nor the command line
# does; the app's own runs took ~5% longer (scripts/live_view_browser.py).

__version__ = "0.1.0"
