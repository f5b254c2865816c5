"""The benchmark: what the app's work costs on this machine, each figure against a baseline run beside it.

Not library code: it imports :mod:`mnist_core` and nothing in the library imports it.
Run it from the repository root with ``python -m benchmarks`` (or ``make bench``);
``python -m benchmarks --help`` lists the parts.

- :mod:`benchmarks.bench`: the driver and parts 1-4 (training, the machine's limit,
  single-image inference, batch throughput);
- :mod:`benchmarks.whole_runs`: parts that time whole runs (time to accuracy,
  live-view overhead, memory);
- :mod:`benchmarks.waits`: parts 8-12, what the user waits on (the quick model, CNN
  training and throughput, a correction, the study), the fast path on against off;
- :mod:`benchmarks.report`: the results as text.
"""
