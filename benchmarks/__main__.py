"""``python -m benchmarks``: run the benchmark (see :mod:`benchmarks.bench`)."""

import sys

from .bench import main

sys.exit(main())
