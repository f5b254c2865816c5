"""Seed noise of the blog's rows on real MNIST, and whether its width and depth findings survive it.

Reads every completed run in a checkpoints folder (trained with the blog's
settings and several seeds, e.g. ``python -m mnist_core train --hidden 512
--batch-size 64 --epochs 2 --seed N``), groups them by configuration, and
prints the study table (ours as mean ± std over seeds, against the published
figure) and the findings (one row to the next) with their t tests.

    MNIST_DATA_DIR=... .venv/bin/python scripts/seed_noise.py --runs-dir /tmp/seed-runs
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from mnist_core import runs, study
from mnist_core.cli import format_steps
from mnist_core.seeds import group_key


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs-dir", type=Path, required=True)
    parser.add_argument("--experiments", nargs="+", default=["width", "depth"], choices=study.EXPERIMENTS)
    args = parser.parse_args()
    saved = runs.list_runs(args.runs_dir)
    base = study.rows(["width"])[2].config  # the blog's 784-512-10, batch 64, 2 epochs
    accs = [100 * r.summary["test_accuracy"] for r in saved
            if r.status == "completed" and group_key(r.config) == group_key(base)]  # fmt: skip
    if len(accs) > 1:
        mean, std = statistics.fmean(accs), statistics.stdev(accs)
        each = ", ".join(f"{a:.2f}" for a in accs)
        print(f"784-512-10, {len(accs)} seeds: mean {mean:.2f}%, std {std:.2f} points, "
              f"range {min(accs):.2f}-{max(accs):.2f} ({each})")  # fmt: skip
    rows = study.table(saved, args.experiments, studies=None)
    print(f"\n{'row':<28} {'published':>9} {'ours (mean)':>11} {'std':>5} {'seeds':>5}  verdict")
    for r in rows:
        ours = "-" if r["ours_accuracy_pct"] is None else f"{r['ours_accuracy_pct']:.2f}"
        std = "-" if r["ours_accuracy_std_pct"] is None else f"{r['ours_accuracy_std_pct']:.2f}"
        pub, n = r["published_accuracy_pct"], r["ours_seeds"]
        print(f"{r['model']:<28} {pub:>9.1f} {ours:>11} {std:>5} {n:>5}  {r['noise_verdict']}")
    print(format_steps(study.steps(rows, saved, studies=None)))


if __name__ == "__main__":
    main()
