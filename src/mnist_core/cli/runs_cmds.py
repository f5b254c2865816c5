"""Commands on single runs: train, evaluate, predict, runs, inside, compare."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .common import ProgressBar, config_from_args, ctrl_c_stops, format_table


def cmd_train(args: argparse.Namespace) -> int:
    from ..pipeline import run_training

    cfg = None if args.resume else config_from_args(args)
    with ctrl_c_stops("stopping after this step") as stop:
        info = run_training(
            cfg, runs_dir=args.runs_dir, data_root=args.data_dir, name=args.name, resume_id=args.resume,
            on_start=lambda run_id: sys.stderr.write(f"run {run_id}\n"),
            on_progress=None if args.quiet else ProgressBar(sys.stderr),
            should_stop=lambda: stop["requested"],
        )
    print(_format_summary(info.id, info.status, info.summary))
    return 0


def _format_summary(run_id: str, status: str, s: dict[str, Any]) -> str:
    rows = [
        ("run", run_id), ("status", status),
        ("test accuracy", f"{s['test_accuracy']:.2%}"),
        ("training time", f"{s['train_time_s']:.1f} s ({s['time_per_epoch_s'] or 0:.1f} s/epoch)"),
        ("parameters", f"{s['parameters']:,}"),
        ("MACs (fvcore)", f"{s['macs']:,}"), ("FLOPs (2 x MACs)", f"{s['flops']:,}"),
        ("fp32 weights", f"{s['weights_bytes']:,} bytes"),
        ("checkpoint (with optimizer)", f"{s['checkpoint_bytes']:,} bytes"),
        ("latency p50 / p95", f"{s['latency_p50_ms']:.3f} / {s['latency_p95_ms']:.3f} ms"),
    ]
    if "energy_kwh" in s:
        estimated = " (estimated)" if s.get("energy_estimated") else ""
        rows.append(("energy / CO2", f"{s['energy_kwh']:.3g} kWh / {s['co2_kg']:.3g} kg "
                     f"({s['co2_country']}){estimated}"))
    return "\n".join(f"{k:>28}: {v}" for k, v in rows)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..data import load_split
    from ..metrics import evaluate
    from ..runs import load_model

    model, cfg = load_model(args.run, args.runs_dir)
    test = load_split(cfg.dataset, train=False, root=args.data_dir)
    result = evaluate(model, test.x, test.y)
    out = {"run": args.run, "test_accuracy": result.accuracy, "test_loss": result.loss,
           "per_class_accuracy": result.per_class_accuracy, "misclassified": len(result.misclassified)}
    print(json.dumps(out, indent=1))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ..errors import CorruptRun, ImageError
    from ..infer import read
    from ..runs import load_model

    model, cfg = load_model(args.run, args.runs_dir)
    results = []
    for path in args.images:
        try:
            reading = read(model, path, cfg.dataset)  # the path, not its bytes: errors name the file
        except (OSError, ImageError) as exc:
            results.append({"image": str(path), "error": str(exc)})
            continue
        p = reading.prediction
        if p is None:  # NaN/infinite outputs: the run is at fault, not the image
            raise CorruptRun(
                f"Run {args.run} cannot predict: {reading.error} Train it again (a lower learning rate "
                "avoids diverging), or choose another run (python -m mnist_core runs)."
            )
        result = {"image": str(path), "label": p.label, "confidence": p.confidence,
                  "probabilities": list(p.probabilities)}
        results.append(result if p.warning is None else result | {"warning": p.warning})  # unsure
    print(json.dumps(results, indent=1))
    return 0 if all("error" not in r for r in results) else 1


def cmd_runs(args: argparse.Namespace) -> int:
    from ..runs import broken_runs, list_runs

    rows = []
    for r in list_runs(args.runs_dir):
        acc = f"{r.test_accuracy:.2%}" if r.test_accuracy is not None else "-"
        secs, params = r.summary.get("train_time_s"), r.summary.get("parameters")
        rows.append((r.id, r.status, acc, f"{secs or 0:.1f}", f"{params or 0:,}", r.name))
    rows += [(run_id, "broken", "", "", "", reason) for run_id, reason in broken_runs(args.runs_dir).items()]
    print(format_table(("run", "status", "test acc", "time s", "params", "name"), rows, right=(2, 3, 4)))
    return 0


def cmd_inside(args: argparse.Namespace) -> int:
    from ..internals import inspect_run
    from ..probes import readouts_or_note

    inside = inspect_run(args.run, args.runs_dir, args.data_dir)
    found, note = readouts_or_note(args.run, args.runs_dir, args.data_dir)  # fitted once, kept beside the run
    if args.json:
        readouts = {"readouts": None if found is None else found.as_dict(), "readouts_note": note}
        print(json.dumps({**inside.as_dict(), **readouts}, indent=1, ensure_ascii=False))
        return 0
    if inside.data_note:
        print(inside.data_note)

    def pct(share: float | None) -> str:
        return "-" if share is None else f"{share:.1%}"

    rows = [
        (layer.name, f"{layer.weights.std:.4f}",
         "-" if layer.activations is None else f"{layer.activations.mean:.4f}",
         pct(layer.dead_share), pct(layer.saturated_share))
        for layer in inside.layers
    ]
    head = ("layer", "weight std", "mean output", "dead", "saturated")
    print(format_table(head, rows, right=(1, 2, 3, 4)))
    print(f"on {inside.sample_size} test images; --json for the histograms and the first-layer order")
    if found is not None:
        print(format_table(("read out linearly at", "test accuracy"),
                           [(r.name, f"{r.accuracy:.1%}") for r in found.readouts], right=(1,)))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ..significance import compare_runs

    found = compare_runs(args.runs, args.runs_dir, args.data_dir)
    if args.json:
        print(json.dumps(found.as_dict(), indent=1, ensure_ascii=False))
        return 0
    print(format_comparison(found))
    return 0


def format_comparison(found: Any) -> str:
    """The verdicts (each run against the best), then each run's accuracy, NLL and ECE."""
    lines = [t.verdict for t in found.tests]
    rows = [
        (r.label, f"{r.accuracy:.2%}", "-" if r.test_loss is None else f"{r.test_loss:.4f}",
         "-" if r.reliability is None else f"{r.reliability.ece:.2%}", r.id)
        for r in sorted(found.records, key=lambda r: -r.accuracy)
    ]
    table = format_table(("run", "test acc", "test NLL", "ECE", "id"), rows, right=(1, 2, 3))
    n = found.records[0].correct.size
    note = (f"on the same {n:,} test images; McNemar's exact test, bootstrap 95% interval, "
            "Holm's correction over the comparisons")
    return "\n".join([*lines, "", table, note])
