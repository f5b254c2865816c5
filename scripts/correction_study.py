"""Which fine-tuning settings teach a model one misread digit without hurting it? (measurement)

For each model (quick default runs in ``--runs-dir``, trained on the real
MNIST) and each candidate :class:`~mnist_core.online.CorrectionSettings`,
correct misread digits one at a time, each from the original model, and record

* ``learned``: the corrected digit is now read as its true label;
* ``views``: share of 8 new small jitters of that digit read correctly (does
  it generalise beyond the exact pixels?);
* ``drop``: test accuracy before minus after, in points, on the evaluation set;
* ``flips``: evaluation images right before and wrong after;
* ``seconds``: the fine-tuning alone.

Two pools of misread digits per model: ``val``, validation images (never
trained on) the model gets wrong, the hard ambiguous cases; and ``drawn``,
rendered glyphs blown up onto a 280x280 canvas and preprocessed like a
drawing (clean strokes of other shapes than MNIST's, as users draw).

Usage:
  MNIST_DATA_DIR=../shared/data python -m mnist_core --runs-dir /tmp/ck train --quick --seed 0   # x3 seeds
  MNIST_DATA_DIR=../shared/data python scripts/correction_study.py --runs-dir /tmp/ck [--per-pool 15]
Prints one JSON line per (setting, pool) and a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import numpy as np
import torch
from PIL import Image

from mnist_core.data import load_data
from mnist_core.fast.precision import configure_math
from mnist_core.infer import predict_batch, preprocess
from mnist_core.metrics import evaluate
from mnist_core.online import CorrectionSettings, _views, eval_subset, fine_tune
from mnist_core.runs import list_runs, load_model
from mnist_core.synthetic import make_digits

DEFAULT = CorrectionSettings()  # what the app uses (chosen from the rounds below)
# Round 1 varies one thing at a time around BASE; round 2 around BASE at lr 3e-5, the best of round 1.
BASE = CorrectionSettings(
    strategy="distill", steps=40, stop_at=0.6, lr=1e-4, replay_size=64, replay_weight=1.0, copies=1
)
LOW = dataclasses.replace(BASE, lr=3e-5)
CANDIDATES: dict[str, CorrectionSettings] = {
    "default": DEFAULT,
    "base": BASE,
    "ce-replay": dataclasses.replace(BASE, strategy="replay"),
    "example-only": dataclasses.replace(BASE, strategy="example"),
    "lr 3e-5": LOW,
    "lr 3e-4": dataclasses.replace(BASE, lr=3e-4),
    "stop 0.9": dataclasses.replace(BASE, stop_at=0.9),
    "10 steps": dataclasses.replace(BASE, steps=10, stop_at=1.0),
    "replay 16": dataclasses.replace(BASE, replay_size=16),
    "replay 256": dataclasses.replace(BASE, replay_size=256),
    "copies 4": dataclasses.replace(BASE, copies=4),
    "stop 0.5": dataclasses.replace(BASE, stop_at=0.5),
    "replay x4": dataclasses.replace(BASE, replay_weight=4.0),
    "replay 256 x4": dataclasses.replace(BASE, replay_size=256, replay_weight=4.0),
    "naive": CorrectionSettings(strategy="replay", lr=1e-3, steps=10, stop_at=1.0, replay_size=64,
                                replay_weight=1.0, copies=8),
    "lr 1e-5": dataclasses.replace(BASE, lr=1e-5, steps=100),
    "lr 3e-5 stop 0.5": dataclasses.replace(LOW, stop_at=0.5),
    "lr 3e-5 stop 0.8": dataclasses.replace(LOW, stop_at=0.8),
    "lr 3e-5 x4": dataclasses.replace(LOW, replay_weight=4.0),
    "lr 3e-5 r256": dataclasses.replace(LOW, replay_size=256),
    "lr 3e-5 r256 x4": dataclasses.replace(LOW, replay_size=256, replay_weight=4.0),
}  # fmt: skip


def drawn_pool(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rendered glyphs as canvas drawings (black ink in alpha), preprocessed as the app does."""
    images, labels = make_digits(n, seed=321)
    inputs = []
    for img in images:
        big = np.asarray(Image.fromarray(img).resize((280, 280), Image.Resampling.BILINEAR))
        canvas = np.zeros((280, 280, 4), np.uint8)
        canvas[..., 3] = big
        inputs.append(preprocess(canvas))
    return torch.cat(inputs), torch.from_numpy(labels.astype(np.int64))


def misread(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, k: int) -> list[int]:
    wrong = torch.nonzero(predict_batch(model, x).argmax(1) != y).flatten()
    return [int(i) for i in wrong[:k]]


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--per-pool", type=int, default=15, help="misread digits per pool and model")
    parser.add_argument("--eval-size", type=int, default=2000, help="test images (0: all 10 000)")
    parser.add_argument("--only", nargs="*", help="candidate names to run (default: all)")
    args = parser.parse_args()
    configure_math("cpu")
    torch.manual_seed(0)
    data = load_data()
    x_eval, y_eval = eval_subset(data.test, args.eval_size)
    x_drawn, y_drawn = drawn_pool(400)
    x_val, y_val = data.val.tensors()
    runs = [r for r in list_runs(args.runs_dir) if r.status == "completed"]
    models = [load_model(r.id, args.runs_dir)[0] for r in runs]
    cases = []  # (model index, pool, x (1,1,28,28), label)
    befores = []
    for m, model in enumerate(models):
        right = torch.tensor(evaluate(model, x_eval, y_eval).predictions) == y_eval
        befores.append(right)
        for pool, (x, y) in {"val": (x_val, y_val), "drawn": (x_drawn, y_drawn)}.items():
            cases += [(m, pool, x[i : i + 1], int(y[i])) for i in misread(model, x, y, args.per_pool)]
    names = args.only or list(CANDIDATES)
    table = []
    for name in names:
        settings = dataclasses.replace(CANDIDATES[name], eval_size=args.eval_size)
        rows: dict[str, list[dict[str, float]]] = {"val": [], "drawn": []}
        for m, pool, x, label in cases:
            start = time.perf_counter()
            tuned, steps = fine_tune(models[m], x, torch.tensor([label]), data.train, settings)
            seconds = time.perf_counter() - start
            views = _views(x, 9, torch.Generator().manual_seed(99))[1:]
            with torch.inference_mode():
                learned = int(tuned(x).argmax()) == label
                views_right = float((tuned(views).argmax(1) == label).float().mean())
                pred = predict_batch(tuned, x_eval).argmax(1)
            right = pred == y_eval
            rows[pool].append({
                "learned": float(learned), "views": views_right, "steps_taken": steps, "seconds": seconds,
                "drop": 100.0 * float(befores[m].float().mean() - right.float().mean()),
                "flips": float((befores[m] & ~right).sum()),
            })  # fmt: skip
        for pool, rs in rows.items():
            agg = {k: statistics.mean(r[k] for r in rs) for k in rs[0]}
            agg |= {"drop_max": max(r["drop"] for r in rs), "over_0.3": sum(r["drop"] > 0.3 for r in rs)}
            line = {"setting": name, "pool": pool, "n": len(rs), **agg, **settings.to_dict()}
            print(json.dumps(line), flush=True)
            table.append(line)
    print(
        f"\n{'setting':14} {'pool':6} {'n':>3} {'learned':>8} {'views':>6} {'drop':>6} {'max':>6} "
        f"{'>0.3':>5} {'flips':>6} {'steps':>6} {'s':>6}"
    )
    for t in table:
        print(
            f"{t['setting']:14} {t['pool']:6} {t['n']:3d} {t['learned']:8.0%} {t['views']:6.0%} "
            f"{t['drop']:6.2f} {t['drop_max']:6.2f} {t['over_0.3']:5d} {t['flips']:6.1f} "
            f"{t['steps_taken']:6.1f} {t['seconds']:6.2f}"
        )


if __name__ == "__main__":
    main()
