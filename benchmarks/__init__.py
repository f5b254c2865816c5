"""The benchmark: what the app's work costs on this machine, each figure against a baseline run beside it.

Not library code: it imports :mod:`mnist_core` and nothing in the library imports it.
Run it from the repository root with ``python -m benchmarks`` (or ``make bench``);
``python -m benchmarks --help`` lists the parts.

- :mod:`benchmarks.bench`: the driver (which parts, the data, the report);
- :mod:`benchmarks.training`: part 1, our epoch against the blog-style reference;
- :mod:`benchmarks.limits`: part 2, the machine's matmul and memory limits;
- :mod:`benchmarks.inference`: parts 3 and 4, single-image inference and throughput;
- :mod:`benchmarks.timing`: timing helpers the parts share;
- :mod:`benchmarks.whole_runs`: parts that time whole runs (time to accuracy,
  live-view overhead, memory);
- :mod:`benchmarks.waits`: parts 8-12, what the user waits on (the quick model, CNN
  training and throughput, a correction, the study), the fast path on against off;
- :mod:`benchmarks.report`: the results as text.
"""

# mnist_core before torch: it sets how OpenMP threads wait, which OpenMP reads only when torch loads
# (without it an epoch under load costs ~10x the CPU in spin-waits).
import mnist_core  # noqa: F401

