"""5. No-op reruns: ``snakemake`` and ``dvc repro`` with every output present and up to date, for 1, 10 and 50 runs.

A copy of the project (git init + dvc init) with a tiny dataset (16/8/8 images) and the
tf.data example shrunk to 1 epoch and 8 units. The whole pipeline runs for real once, for
run ``mnist-tf``. More runs (``r002``...) are copies of its config under other names; their
completion is faked without training: the run's results are copied (the stage fingerprints
do not depend on the run name, so the copies are what the stages would write), then
``snakemake --touch --forceall`` records Snakemake's metadata for every job (params included),
dvc.lock gets the copied run's entries under the new names, and ``dvc commit`` records the
shared fingerprint stage with the new runs. Before any timing, ``snakemake
-n`` must say "Nothing to be done" and ``dvc status`` "up to date", so the fake is checked
by both tools.

Timed: ``snakemake --cores 2`` (the profile's ``resources: gpu=1`` applies) and ``dvc repro``,
each a fresh process, 5 repeats. Baselines in the same run: each tool's own start-up, i.e. a
no-op of a one-rule Snakefile (and ``snakemake --version``) and ``dvc repro`` of a one-stage
dvc.yaml, both with their output present.

SLURM: snakemake-executor-plugin-slurm (installed with aimed's dev extra) runs ``scontrol show
config`` whenever Snakemake starts, with a 10 s timeout. On a machine with the SLURM client
but no reachable controller that adds ~9 s to every Snakemake command, including
``--version``. The timed commands therefore run with a stand-in ``scontrol`` that fails at
once (``bench/.cache/no-slurm/`` first on PATH), so the figures show the workflow, not the
timeout; ``snakemake --version`` with the real ``scontrol`` is shown for reference. Sub-linear:
the no-op time grows by less than the number of runs between the last two counts (exponent log(t_hi/t_lo)/log(n_hi/n_lo) < 1).
"""

from __future__ import annotations

import math
import os
import pathlib
import shutil
import tempfile

import yaml

from aimed.runners.dvc import FINGERPRINT_STAGE
from bench import common

FULL = dict(counts=(1, 10, 50), repeats=5)
QUICK = dict(counts=(1, 3), repeats=2)
SLACK_S = 3.0
BASE_RUN = "mnist-tf"


#: A stand-in ``scontrol`` that fails at once (see the module docstring).
NO_SLURM = common.CACHE / "no-slurm"


def _env(real_slurm: bool = False) -> dict:
    if real_slurm:
        return common.bench_env()
    NO_SLURM.mkdir(parents=True, exist_ok=True)
    shim = NO_SLURM / "scontrol"
    if not shim.is_file():
        shim.write_text("#!/bin/sh\n# bench/noop_reruns.py: no SLURM controller here\nexit 1\n")
        shim.chmod(0o755)
    env = common.bench_env()
    env["PATH"] = os.pathsep.join((str(NO_SLURM), env["PATH"]))
    return env


def _cmd(project: pathlib.Path, *args: str, check: bool = True, real_slurm: bool = False) -> dict:
    return common.measure_process(list(args), cwd=project, env=_env(real_slurm), timeout=3600, check=check)


def _set_runs(project: pathlib.Path, runs: list) -> None:
    path = project / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["runs"] = runs
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def _copy_lock(project: pathlib.Path, names: list) -> None:
    """dvc.lock entries of the copied runs: the base run's entries, renamed."""
    path = project / "dvc.lock"
    lock = yaml.safe_load(path.read_text())
    base = {k: v for k, v in lock["stages"].items() if k.startswith(f"{BASE_RUN}.")}
    for name in names:
        for key, entry in base.items():
            text = yaml.safe_dump(entry).replace(BASE_RUN, name)
            lock["stages"][key.replace(BASE_RUN, name, 1)] = yaml.safe_load(text)
    path.write_text(yaml.safe_dump(lock, sort_keys=False))


def add_runs(project: pathlib.Path, names: list, all_runs: list) -> None:
    """Add completed copies of the base run, checked by ``snakemake -n`` and ``dvc status``."""
    for name in names:
        shutil.copytree(project / "runs" / BASE_RUN, project / "runs" / name)
        shutil.copytree(project / "results" / BASE_RUN, project / "results" / name)
    _set_runs(project, all_runs)
    dvc_dir = project / ".dvc"
    dvc_dir.rename(project / ".dvc-aside")      # the workflow's onsuccess commits to DVC only when .dvc exists
    try:
        _cmd(project, "snakemake", "--touch", "--forceall", "--cores", "2", "--quiet")
    finally:
        (project / ".dvc-aside").rename(dvc_dir)
    _copy_lock(project, names)
    _cmd(project, "dvc", "commit", "--force", "--quiet", FINGERPRINT_STAGE)


def check_up_to_date(project: pathlib.Path) -> None:
    dry = _cmd(project, "snakemake", "-n", "--cores", "2")["output"]
    if "Nothing to be done" not in dry:
        raise RuntimeError(f"snakemake -n still has work to do:\n{dry[-3000:]}")
    status = _cmd(project, "dvc", "status")["output"]
    if "up to date" not in status:
        raise RuntimeError(f"dvc status is not clean:\n{status[-3000:]}")


def repeat(project: pathlib.Path, args: list, n: int, real_slurm: bool = False) -> list:
    times = []
    for _ in range(n):
        result = _cmd(project, *args, real_slurm=real_slurm)
        if args[0] == "snakemake" and "Nothing to be done" not in result["output"] and "--version" not in args:
            raise RuntimeError(f"{' '.join(args)} was not a no-op:\n{result['output'][-3000:]}")
        times.append(result["wall"])
    return times


def baselines(tmp: pathlib.Path, n: int) -> dict:
    smk = tmp / "trivial-snakemake"
    smk.mkdir()
    (smk / "Snakefile").write_text('rule all:\n    input: "a.txt"\n\n'
                                   'rule make:\n    output: "a.txt"\n    shell: "touch {output}"\n')
    _cmd(smk, "snakemake", "--cores", "1", "--quiet")
    dvc = tmp / "trivial-dvc"
    dvc.mkdir()
    _cmd(dvc, "git", "init", "-q")
    _cmd(dvc, "dvc", "init", "-q")
    (dvc / "dvc.yaml").write_text("stages:\n  make:\n    cmd: echo hi > a.txt\n    outs:\n      - a.txt\n")
    _cmd(dvc, "dvc", "repro", "-q")
    base = {}
    if shutil.which("scontrol"):
        base["snakemake --version, with this machine's scontrol (informative)"] = repeat(
            smk, ["snakemake", "--version"], 2, real_slurm=True)
    return {
        **base,
        "snakemake --version": repeat(smk, ["snakemake", "--version"], n),
        "snakemake no-op, one-rule Snakefile": repeat(smk, ["snakemake", "--cores", "2"], n),
        "dvc repro no-op, one-stage dvc.yaml": repeat(dvc, ["dvc", "repro"], n),
    }


def run(quick: bool = False) -> dict:
    p = QUICK if quick else FULL
    times: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-noop-") as tmp:
        tmp = pathlib.Path(tmp)
        base = baselines(tmp, p["repeats"])
        project = common.make_project(tmp / "project", runs={BASE_RUN: dict(
            base=BASE_RUN, epochs=1, model_builder={"n_filters": 8}, evaluation={"worst_k": 4},
            mlflow={"tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}"})})
        for run_dir in (project / "runs").iterdir():
            if run_dir.name != BASE_RUN:
                shutil.rmtree(run_dir)
        _set_runs(project, [BASE_RUN])
        config_path = project / "config" / "config.yaml"
        config = yaml.safe_load(config_path.read_text())
        config["datasets"]["mnist"].update(limit_train=16, limit_validation=8, limit_test=8)
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        _cmd(project, "git", "init", "-q")
        _cmd(project, "dvc", "init", "-q")
        common.log("  running the pipeline once for real (1 run, tiny dataset) ...")
        first = _cmd(project, "snakemake", "--cores", "2")
        common.log(f"  done in {first['wall']:.0f} s")
        names = [BASE_RUN]
        for count in p["counts"]:
            new = [f"r{i:03d}" for i in range(len(names) + 1, count + 1)]
            if new:
                names += new
                add_runs(project, new, names)
            check_up_to_date(project)
            times[count] = {"snakemake": repeat(project, ["snakemake", "--cores", "2"], p["repeats"]),
                            "dvc": repeat(project, ["dvc", "repro"], p["repeats"])}
            common.log(f"  {count} run(s): snakemake {common.summary(times[count]['snakemake'])['median']:.2f} s, "
                       f"dvc repro {common.summary(times[count]['dvc'])['median']:.2f} s")
    startup = {k: common.summary(v)["median"] for k, v in base.items()}
    s_smk = startup["snakemake no-op, one-rule Snakefile"]
    s_dvc = startup["dvc repro no-op, one-stage dvc.yaml"]
    measurements = [common.measurement(k if "informative" in k else f"{k} (baseline)", v, "s") for k, v in base.items()]
    goals = []
    counts = p["counts"]
    for tool, start_up in (("snakemake", s_smk), ("dvc", s_dvc)):
        med = {n: common.summary(times[n][tool])["median"] for n in counts}
        for n in counts:
            measurements.append(common.measurement(f"{'snakemake' if tool == 'snakemake' else 'dvc repro'} no-op, {n} run(s)",
                                                   times[n][tool], "s", ratio=common.ratio(med[n], start_up),
                                                   above_startup=med[n] - start_up))
        worst = max(med[n] - start_up for n in counts)
        label = "snakemake" if tool == "snakemake" else "dvc repro"
        at_counts = ", ".join(map(str, counts))
        goals.append(common.goal(f"{label} no-op <= 3 s + the tool's start-up ({start_up:.1f} s), at {at_counts} runs",
                                 worst, "<=", SLACK_S,
                                 "; ".join(f"{n}: {med[n]:.1f} s" for n in counts) + f" (worst +{worst:.1f} s over start-up)"))
        lo, hi = counts[-2], counts[-1]
        exponent = math.log(med[hi] / med[lo]) / math.log(hi / lo)
        goals.append(common.goal(f"{label} no-op grows sub-linearly in the number of runs ({lo} -> {hi})",
                                 exponent, "<", 1.0,
                                 f"x{med[hi] / med[lo]:.2f} for x{hi / lo:g} runs (exponent {exponent:.2f}; "
                                 f"{(med[hi] - med[lo]) / (hi - lo) * 1000:.0f} ms per added run)"))
    return {
        "name": "noop_reruns",
        "title": "5. No-op reruns (snakemake, dvc repro)",
        "method": __doc__.split("\n\n", 1)[1].strip(),
        "setup": {"first_pipeline_s": first["wall"], "counts": list(counts)},
        "measurements": measurements,
        "goals": goals,
    }


if __name__ == "__main__":
    common.worker_main("bench.noop_reruns")
