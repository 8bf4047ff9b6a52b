"""Run every benchmark; write bench/results.json and BENCHMARKS.md.

    python bench/run.py              # all benchmarks (make bench)
    python bench/run.py --quick      # small and few repeats: checks that every benchmark works
    python bench/run.py --only evaluation,startup
    python bench/run.py --render     # only rewrite BENCHMARKS.md from bench/results.json

Each benchmark runs as ``python -m bench.<name>`` in its own process (and starts its own
worker processes); a failing benchmark is recorded with its error and the others still run.
--quick writes to bench/.cache/ and leaves bench/results.json and BENCHMARKS.md alone.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time
from typing import Optional

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bench import common

ORDER = ("training_overhead", "input_pipeline", "evaluation", "validate_data", "noop_reruns", "startup", "limit",
         "stage_rss", "metrics", "checkpoints")
RESULTS = common.BENCH / "results.json"
MARKDOWN = common.REPO / "BENCHMARKS.md"
MNIST_FULL = common.BENCH / "mnist_full.json"
NOTES = common.BENCH / "notes.md"
BUDGET_S = 20 * 60


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "—"
    if unit == "MB" or unit == "GFLOP/s":
        return f"{value:,.0f} {unit}"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    return f"{value:.3g}{' ' + unit if unit else ''}"


#: Extra figures shown beside a measurement: key and format.
_EXTRA_FORMATS = (
    ("waiting_fraction", "waiting {:.0%}"),
    ("cores_busy", "{:.2f} of 2 cores busy"),
    ("images_per_s", "{:,.0f} images/s"),
    ("samples_per_s", "{:,.0f} samples/s"),
    ("wall_s", "wall {:.1f} s"),
    ("first_epoch", "first epoch {:.2f} s"),
    ("above_startup", "{:+.2f} s over start-up"),
    ("sampled_peak_mb", "sampled peak {:,.0f} MB"),
)


def _extra(m: dict) -> str:
    return ", ".join(fmt.format(m[key]) for key, fmt in _EXTRA_FORMATS if m.get(key) is not None)


def _met(goal: dict) -> str:
    return {True: "**met**", False: "**not met**", None: "not available"}[goal["met"]]


def render(results: dict, mnist_full: Optional[dict] = None) -> str:
    machine = results.get("machine", {})
    versions = machine.get("versions", {})
    benchmarks = results.get("benchmarks", {})
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`bench/run.py`; one module per benchmark in `bench/`, raw numbers in "
        "`bench/results.json`). Every figure is the median of the repeats shown (n), measured against a "
        "baseline in the same run; ratio = figure / baseline. Re-render with `python bench/run.py --render`.",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        f"| CPU | {machine.get('cpu', '?')} ({machine.get('simd', '')}) |",
        f"| cores | {machine.get('cores', '?')} |",
        f"| RAM | {machine.get('ram_gb', '?')} GB |",
        f"| Python | {machine.get('python', '?')} |",
        "| versions | " + ", ".join(f"{k} {v}" for k, v in versions.items()) + " |",
        f"| date | {machine.get('date', '?')} |",
        f"| `make bench` wall time | {(results.get('wall_s') or 0) / 60:.1f} min"
        + (f" (of which building datasets {results.get('dataset_build_s', 0):.0f} s)"
           if results.get("dataset_build_s", 0) >= 1 else "")
        + " |",
        f"| load average (1/5/15 min) | start {machine.get('load_average')}, end {results.get('load_after')} |",
        "",
        *(["Benchmarks rerun alone (`--only`) after the full run: "
           + ", ".join(f"{name} on {date}" for name, date in results["rerun_alone"].items())
           + "; the wall time above is the last full run's.", ""] if results.get("rerun_alone") else []),
        "The load average counts other processes that shared the 2 cores during the run; figures taken "
        "under load are noisier and slower than on an idle machine.",
        "",
        "## Goals",
        "",
        "| benchmark | goal | figure | result |",
        "| --- | --- | --- | --- |",
    ]
    for name in ORDER:
        b = benchmarks.get(name)
        if b is None:
            continue
        if "error" in b:
            lines.append(f"| {name} | (benchmark failed) | {b['error'].splitlines()[-1][:150]} | **failed** |")
            continue
        for g in b.get("goals", []):
            figure = g["figure"] + (f" — {g['note']}" if g.get("note") else "")
            lines.append(f"| {b['title'].split(' (')[0]} | {g['goal']} | {figure} | {_met(g)} |")
        if name == "limit" and b.get("summary"):
            lines.append(f"| {b['title'].split(' (')[0]} | (report) peak {b['setup']['peak_gflops']:.0f} GFLOP/s | "
                         f"{b['summary']} | — |")
    if results.get("wall_s"):
        within = results["wall_s"] <= BUDGET_S
        lines.append(f"| `make bench` | all benchmarks in under {BUDGET_S // 60} minutes (full-MNIST training excluded) | "
                     f"{results['wall_s'] / 60:.1f} min | {_met({'met': within})} |")
    lines += ["", "## Full-MNIST scale run (`make mnist-full`)", ""]
    if mnist_full:
        lines += [
            f"`runs/mnist-full/config.yaml` ({mnist_full['config']}), run {mnist_full['date']} "
            f"(load average at start {mnist_full.get('load_before')}): test accuracy "
            f"**{mnist_full['test_accuracy']:.4f}**, validation accuracy {mnist_full['validation_accuracy']:.4f}, "
            f"total {mnist_full['total_wall_s'] / 60:.1f} min.",
            "",
            "| stage | wall time | peak RSS |",
            "| --- | --- | --- |",
        ]
        for label, s in mnist_full["stages"].items():
            lines.append(f"| {label} | {s['wall']:.1f} s | {s['maxrss_mb']:,.0f} MB |")
        if mnist_full.get("train"):
            t = mnist_full["train"]
            lines += ["", f"Training: {t['epochs']} epochs, best epoch {t['best_epoch']} "
                          f"(val_loss {t['best_value']:.4f}), {t['per_epoch_s']:.1f} s per epoch on average "
                          f"(train stage wall / epochs, including start-up and export of the best model)."]
    else:
        lines.append("Not run yet: `make mnist-full` writes `bench/mnist_full.json` and this section.")
    if NOTES.is_file():
        lines += ["", NOTES.read_text().strip()]
    lines += ["", "## Details", ""]
    for name in ORDER:
        b = benchmarks.get(name)
        if b is None:
            continue
        if "error" in b:
            lines += [f"### {name}", "", "Failed:", "", "```", b["error"][-3000:], "```", ""]
            continue
        lines += [f"### {b['title']}", "", b["method"], "",
                  "| measurement | median | min – max | n | ratio | |", "| --- | --- | --- | --- | --- | --- |"]
        for m in b["measurements"]:
            spread = f"{_fmt(m['min'], m['unit'])} – {_fmt(m['max'], m['unit'])}" if m.get("n") else ""
            ratio = f"{m['ratio']:.3g}" if m.get("ratio") is not None else ""
            lines.append(f"| {m['label']} | {_fmt(m['median'], m['unit'])} | {spread} | {m.get('n') or ''} | {ratio} | "
                         f"{_extra(m)} |")
        lines += ["", f"Benchmark wall time {b.get('wall_s', 0):.0f} s; load average before {b.get('load_before')}, "
                      f"after {b.get('load_after')}.", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_markdown(results_path: pathlib.Path = RESULTS, markdown: pathlib.Path = MARKDOWN) -> None:
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    mnist_full = json.loads(MNIST_FULL.read_text()) if MNIST_FULL.is_file() else None
    markdown.write_text(render(results, mnist_full))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats, output in bench/.cache/")
    parser.add_argument("--only", help="comma-separated benchmark names: " + ", ".join(ORDER))
    parser.add_argument("--render", action="store_true", help="only rewrite BENCHMARKS.md from bench/results.json")
    args = parser.parse_args(argv)
    if args.render:
        write_markdown()
        print(f"wrote {MARKDOWN}")
        return 0
    names = [n.strip() for n in args.only.split(",")] if args.only else list(ORDER)
    unknown = set(names) - set(ORDER)
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}; known: {', '.join(ORDER)}")
    results_path = common.CACHE / "results-quick.json" if args.quick else RESULTS
    markdown = common.CACHE / "BENCHMARKS-quick.md" if args.quick else MARKDOWN
    common.CACHE.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = {"machine": common.machine_info(), "quick": args.quick, "benchmarks": {}}
    if args.only and results_path.is_file():   # keep the other benchmarks' last results and wall time
        previous = json.loads(results_path.read_text())
        results["benchmarks"] = previous.get("benchmarks", {})
        results["wall_s"] = previous.get("wall_s")
        # The machine table describes the full run; a benchmark rerun alone is dated in rerun_alone.
        rerun_machine = results["machine"]
        results["machine"] = previous.get("machine", rerun_machine)
        results["rerun_alone"] = dict(previous.get("rerun_alone", {}), **{name: rerun_machine["date"] for name in names})
    print(f"machine: {results['machine']['cpu']}, {results['machine']['cores']} cores, load {results['machine']['load_average']}",
          flush=True)
    if not args.quick:
        t = time.perf_counter()
        common.dataset()
        common.dataset(**common.SIZES_20K)
        common.dataset(**common.SIZES_10K)
        results["dataset_build_s"] = time.perf_counter() - t
    env = common.bench_env(AIMED_BENCH_RESULTS=str(results_path))
    for name in names:
        print(f"\n== {name}", flush=True)
        with tempfile.TemporaryDirectory(prefix="aimed-bench-run-") as tmp:
            out = pathlib.Path(tmp) / "result.json"
            cmd = [common.PYTHON, "-m", f"bench.{name}", "--out", str(out)] + (["--quick"] if args.quick else [])
            proc = common.measure_process(cmd, env=env, timeout=3600, check=False)
            print(proc["output"].rstrip(), flush=True)
            if proc["rc"] == 0 and out.is_file():
                result = json.loads(out.read_text())
                for g in result.get("goals", []):
                    print(f"  goal: {g['goal']}: {g['figure']} -> {_met(g).strip('*')}", flush=True)
            else:
                result = {"name": name, "error": proc["output"][-6000:] or f"exit code {proc['rc']}", "wall_s": proc["wall"]}
                print(f"  FAILED (exit code {proc['rc']})", flush=True)
        results["benchmarks"][name] = result
        results_path.write_text(json.dumps(results, indent=1))
    if not args.only:
        results["wall_s"] = time.perf_counter() - start
    results["load_after"] = common.load_average()
    results_path.write_text(json.dumps(results, indent=1))
    write_markdown(results_path, markdown)
    failed = [n for n in names if "error" in results["benchmarks"][n]]
    print(f"\nwrote {results_path.relative_to(common.REPO)} and {markdown.relative_to(common.REPO)} "
          f"in {(time.perf_counter() - start) / 60:.1f} min" + (f"; FAILED: {', '.join(failed)}" if failed else ""), flush=True)
    if not args.quick and not args.only and results["wall_s"] > BUDGET_S:
        print(f"warning: make bench took longer than its {BUDGET_S // 60}-minute budget", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
