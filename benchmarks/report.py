"""The benchmark's results as text: a block per part that was run (:mod:`benchmarks.bench`)."""

from __future__ import annotations

import os
from typing import Any


def report(results: dict[str, Any]) -> str:
    """The results as text, a block per part that was run."""
    lines = [f"data: {results['data']}; training on {results.get('device', 'cpu')} "
             f"(parts 1-2), threads: {results['threads']}; torch {results['torch']}"]
    if results.get("load_average_start") is not None:
        end = results.get("load_average_end")
        lines.append(f"load average (1 min) at the start {results['load_average_start']:.1f}"
                     + (f", at the end {end:.1f}" if end is not None else "") + f" on {os.cpu_count()} CPUs")
    for key, block in _BLOCKS.items():
        if results.get(key):
            lines += ["", *block(results)]
    return "\n".join(lines)


def _range(r: dict[str, float], digits: int = 2) -> str:
    return f"{r['median']:.{digits}f} ({r['min']:.{digits}f}-{r['max']:.{digits}f})"


def _training_lines(results: dict[str, Any]) -> list[str]:
    lines = [f"{'model':<18} {'batch':>5} {'ours s/epoch':>20} {'reference s/epoch':>20} "
             f"{'speedup':>8} {'bound s':>8} {'ours/bound':>10} {'opt floor s':>11} {'ours/(b+f)':>10}"]
    for r in results["training"]:
        bound = results.get("bound_s", {}).get(r["model"])
        tail = ""
        if bound:
            ours = r["ours_s"]["median"]
            tail = f" {bound:>8.2f} {ours / bound:>9.2f}x"
            floor = r.get("optimizer_floor_s")
            if floor is not None:
                tail += f" {floor:>11.2f} {ours / (bound + floor):>9.2f}x"
        lines.append(f"{r['model']:<18} {r['batch']:>5} {_range(r['ours_s']):>20} "
                     f"{_range(r['reference_s']):>20} {r['speedup']:>7.2f}x{tail}")
    for r in results["training"]:
        if "ours_bf16_s" in r:
            mixed = r["ours_bf16_s"]["median"]
            line = (f"  mixed precision (bfloat16 products), {r['model']} batch {r['batch']}: "
                    f"{_range(r['ours_bf16_s'])} s/epoch, "
                    f"{r['ours_s']['median'] / mixed:.2f}x our float32 epoch")
            for key, dtype in (("bound_s", "float32"), ("bound_bf16_s", "bfloat16")):
                bound = results.get(key, {}).get(r["model"])
                if bound:
                    line += f", {mixed / bound:.2f}x the {dtype} bound"
            lines.append(line)
    for r in results["training"]:
        if "parts_ms" in r:
            lines.append(_parts_line(r))
    return lines


def _parts_line(row: dict[str, Any]) -> str:
    """Where a batch-1 step of ``row`` goes: each part's median ms, and their sum.

    The parts are timed apart from the table's epochs, so their sum is not
    subtracted from the table's step time: on a shared machine the two
    measurements may see different neighbours.
    """
    out = []
    for side, order in (("ours", ("forward", "backward", "optimizer")),
                        ("reference", ("data", "forward", "backward", "optimizer"))):
        parts = row["parts_ms"][side]
        named = ", ".join(f"{k} {parts[k]:.3f}" for k in order)
        out.append(f"{side} {named} (sum {sum(parts[k] for k in order):.3f})")
    return f"  batch 1, {row['model']}, ms per step: " + "; ".join(out)


def _bound_lines(results: dict[str, Any]) -> list[str]:
    bounds = ", ".join(f"{k} {v:.2f} s" for k, v in results["bound_s"].items())
    measured = results.get("gflops_measured", [])
    best_of = f" (the best of {', '.join(f'{g:.0f}' for g in measured)})" if len(measured) > 1 else ""
    lines = [f"matmul: {results['gflops']:.0f} GFLOP/s float32{best_of}; epoch lower bounds: {bounds}"]
    if results.get("gflops_bf16"):
        bf16_measured = ", ".join(f"{g:.0f}" for g in results["gflops_bf16_measured"])
        bf16_bounds = ", ".join(f"{k} {v:.2f} s" for k, v in results["bound_bf16_s"].items())
        lines.append(f"matmul: {results['gflops_bf16']:.0f} GFLOP/s bfloat16 (measured {bf16_measured}); "
                     f"epoch lower bounds: {bf16_bounds}")
    if results.get("adam_gb_s"):
        traffic = ", ".join(f"{k} {v:.0f} GB/s" for k, v in results["adam_gb_s"].items())
        lines.append(f"memory: copying a buffer the size of Adam's working set (16 bytes a parameter): "
                     f"{traffic}; opt floor = steps x {results['adam_bytes_per_param']} bytes a parameter "
                     "at that rate")
    return lines


def _inference_lines(results: dict[str, Any]) -> list[str]:
    return [
        f"{r['model']:<16} canvas->probabilities p50 {r['end_to_end_ms']['p50']:.2f} ms "
        f"p95 {r['end_to_end_ms']['p95']:.2f} ms (preprocess p50 {r['preprocess_ms']['p50']:.2f} ms, "
        f"predict p50 {r['predict_ms']['p50']:.3f} ms); "
        f"noisy scan p50 {r['scan_end_to_end_ms']['p50']:.2f} ms"
        for r in results["inference"]
    ]


def _throughput_lines(results: dict[str, Any]) -> list[str]:
    return [
        f"{r['model']:<16} test set ({r['images']} images, batches of {r['batch']}): "
        f"{r['images_per_s']:,.0f} images/s, {_range(r['seconds'], 3)} s"
        for r in results["throughput"]
    ]


def _accuracy_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    for r in results["accuracy"]:
        if r["reached"]:
            took = f"{r['seconds']:.1f} s ({r['epochs']:.2f} epochs; data load {r['load_s']:.1f} s)"
        else:
            took = f"not reached (best {max(c['test_accuracy'] for c in r['checks']):.2%})"
        lines.append(f"time to {r['target']:.0%} test accuracy, {r['config']}: {took}")
    return lines


def _overhead_lines(results: dict[str, Any]) -> list[str]:
    o = results["overhead"]
    return [f"live view, {o['config']}: training plain {_range(o['plain_s'])} s, "
            f"wired {_range(o['wired_s'])} s: overhead {o['overhead']:+.1%} "
            f"(median of paired ratios {o['paired_overhead']:+.1%}; {o['reads_per_run']:.0f} reads a run)",
            "  in one process, without a browser: scripts/live_view_browser.py times the real page"]


def _memory_lines(results: dict[str, Any]) -> list[str]:
    m = results["memory"]
    after = m["rss_after_each_mb"]
    return [f"memory, {m['runs']} runs of {m['config']}: {m['baseline_mb']:.0f} MiB after imports, "
            f"peak of the first run {m['peak_first_run_mb']:.0f} MiB; RSS after run 1 {after[0]:.0f} MiB, "
            f"after run {m['runs']} {after[-1]:.0f} MiB; growth from run 2 {m['growth_mb']:+.1f} MiB "
            f"({m['slope_mb_per_run']:+.2f} MiB/run)"]


def _sides(r: dict[str, Any]) -> str:
    """Fast path on against off: "fast 4.1 (4.0-4.3) s, plain 9.0 (...) s: 2.20x"."""
    return f"fast {_range(r['fast_s'])} s, plain {_range(r['plain_s'])} s: {r['speedup']:.2f}x"


def _quick_lines(results: dict[str, Any]) -> list[str]:
    r = results["quick_model"]
    acc = r["test_accuracy"]
    return [f"quick model ({r['config']}), start to a saved, measured run: {_sides(r)}; "
            f"test accuracy fast {acc['fast']:.2%}, plain {acc['plain']:.2%}; training alone "
            f"fast {r['train_s']['fast']:.2f} s, plain {r['train_s']['plain']:.2f} s"]


def _cnn_training_lines(results: dict[str, Any]) -> list[str]:
    lines = [f"{'model':<30} {'batch':>5} {'ours s/epoch':>20} {'reference s/epoch':>20} {'speedup':>8} "
             f"{'blog s/epoch':>12}"]
    for r in results["cnn_training"]:
        blog = f"{r['blog_s']:>12.2f}" if r.get("blog_s") else f"{'-':>12}"
        lines.append(f"{r['model']:<30} {r['batch']:>5} {_range(r['ours_s']):>20} "
                     f"{_range(r['reference_s']):>20} {r['speedup']:>7.2f}x {blog}")
    steps = results["cnn_training"][0]["extrapolated_from_steps"]
    lines.append(f"  each epoch extrapolated from {steps} timed steps; the blog's figures are its laptop's")
    return lines


def _blog_accuracy_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    for r in results["blog_accuracy"]:
        verdict = "at least the blog's" if r["at_least_blog"] else "BELOW the blog's"
        lines.append(f"{r['model']} trained as the blog did ({r['epochs']} epochs, batch {r['batch']}): "
                     f"test accuracy {r['test_accuracy_pct']:.2f}% against the blog's "
                     f"{r['blog_accuracy_pct']:.1f}% ({verdict}); {r['epoch_s']:.2f} s per epoch "
                     f"measured, the blog's laptop {r['blog_epoch_s']:.2f} s")
    return lines


def _cnn_throughput_lines(results: dict[str, Any]) -> list[str]:
    r = results["cnn_throughput"]
    return [f"{r['model']} on the test set ({r['images']} images, metrics.evaluate): {_sides(r)}; "
            f"{r['fast_images_per_s']:,.0f} images/s fast, {r['plain_images_per_s']:,.0f} plain"]


def _correction_lines(results: dict[str, Any]) -> list[str]:
    r = results["correction"]
    return [f"a correction end to end (teach.correct, default settings, test set before and after) "
            f"on {r['config']}: {_sides(r)}"]


def _study_lines(results: dict[str, Any]) -> list[str]:
    r = results["study"]
    target = r.get("target_s", 60.0)
    verdict = "met" if r["fast_s"] <= target else "NOT met"
    threads = f" on {r['threads']} threads" if "threads" in r else ""
    lines = [f"the study without batch-1 rows, PROJECTED from {r['projected_from_steps']} timed steps a row "
             f"(+ validation, run-end measurements): fast{threads} {r['fast_s']:.1f} s "
             f"(target {target:.0f} s: {verdict}), plain {r['plain_s']:.1f} s, "
             f"the blog's laptop {r['blog_s']:.1f} s"]
    if "fast_1t_s" in r:
        lines.append(f"  fast on one thread {r['fast_1t_s']:.1f} s; two rows at once, one thread each "
                     "(the one-thread rows packed on 2 lanes, a lower bound; "
                     f"the app trains one row at a time): "
                     f"{r['two_lanes_1t_s']:.1f} s")
    if "two_lanes_measured_s" in r:
        lanes = "; ".join(", ".join(row["row"].replace("MLP ", "") for row in lane) for lane in r["lanes"])
        lines.append(f"  two rows at once, one thread each, MEASURED (two lanes projected at once): "
                     f"{r['two_lanes_measured_s']:.1f} s (lanes: {lanes})")
    for row in r["rows"]:
        blog = f", blog {row['blog_s']:6.2f} s" if row.get("blog_s") else ""
        one = f", 1 thread {row['fast_1t_s']:6.2f} s" if "fast_1t_s" in row else ""
        epoch = f" (epoch {row['parts']['fast']['epoch_s']:5.2f} s)" if "parts" in row else ""
        batch = f" b{row['batch']:<4}" if "batch" in row else ""
        lines.append(f"  {row['row']:<36}{batch} fast {row['fast_s']:6.2f} s{epoch}{one}, "
                     f"plain {row['plain_s']:6.2f} s{blog}")
    return lines


def _layer_stats_lines(results: dict[str, Any]) -> list[str]:
    from .layer_stats import report_lines  # part 13's own wording, beside its measurement

    return report_lines(results["layer_stats"])


_BLOCKS = {
    "training": _training_lines, "gflops": _bound_lines, "inference": _inference_lines,
    "throughput": _throughput_lines, "accuracy": _accuracy_lines, "overhead": _overhead_lines,
    "memory": _memory_lines, "quick_model": _quick_lines, "cnn_training": _cnn_training_lines,
    "blog_accuracy": _blog_accuracy_lines,
    "cnn_throughput": _cnn_throughput_lines, "correction": _correction_lines, "study": _study_lines,
    "layer_stats": _layer_stats_lines,
}
