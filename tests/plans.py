"""What Snakemake and DVC would run in a project: job multisets from dry runs, and edits undone after.

Shared by the rerun matrix and the user-code zoo. A job is ``(rule, run, split)``. The ``fingerprint``
DVC stage (``aimed fingerprint``, no TensorFlow) is bookkeeping: it is left out of the comparison,
and for a dry run it is run beforehand (a dry run cannot run it, and the real stages depend on the
files it writes).
"""

from __future__ import annotations

import collections
import contextlib
import json
import pathlib
import re
import shutil
import sys
from typing import Counter, Dict, Iterable, Optional, Tuple

import yaml
from conftest import run_in

from aimed.pipeline import EVAL_SPLITS, REPORT_FORMATS, STAGES
from aimed.runners.dvc import FINGERPRINT_STAGE, PREPARE_DATA_STAGE, stage_name

Job = Tuple[str, Optional[str], Optional[str]]  # (rule, run, split)


# ----------------------------------------------------------------------------- expected job sets


def jobs(runs: Iterable[str], *stages: str) -> Counter[Job]:
    """The jobs of ``stages`` for each run; ``evaluate`` is both splits, ``evaluate:<split>`` one."""
    found: Counter[Job] = collections.Counter()
    for run in runs:
        for stage in stages:
            name, _, split = stage.partition(":")
            splits = (split,) if split else EVAL_SPLITS if name == "evaluate" else (None,)
            for one in splits:
                found[(STAGES[name].rule, run, one)] += 1
    return found


FROM_VALIDATE = ("validate-data", "check-preprocessing", "train", "export", "evaluate")
FROM_CHECK = FROM_VALIDATE[1:]
FROM_TRAIN = FROM_VALIDATE[2:]


# ----------------------------------------------------------------------------- what the runners plan


def _job_stats(output: str) -> Dict[str, int]:
    match = re.search(r"Job stats:\s*\njob\s+count\s*\n[-\s]+\n(.*?)\ntotal\s+(\d+)", output, re.S)
    assert match, f"no job stats in the Snakemake output:\n{output}"
    return {name: int(count) for name, count in (line.split() for line in match.group(1).splitlines())}


def _stage_rule(rule: str) -> str:
    """The stage's rule of a Snakemake rule: ``evaluate_<format>`` evaluates runs of another report format."""
    for report_format in REPORT_FORMATS[1:]:
        if rule == f"evaluate_{report_format}":
            return STAGES["evaluate"].rule
    return rule


def snakemake_jobs(output: str) -> Counter[Job]:
    """The jobs in Snakemake's output (a dry run or a run with --printshellcmds), from their commands.

    The rule all, which has no command, is left out; the counts are checked against the job stats.
    """
    if "Nothing to be done" in output:
        return collections.Counter()
    found: Counter[Job] = collections.Counter()
    for command in re.findall(r"^\s*Shell command: (.+)$", output, re.M):
        aimed = re.match(r"aimed (\S+) (\S+)(?: --split (\S+))? >", command)
        if aimed:
            found[(STAGES[aimed.group(1)].rule, aimed.group(2), aimed.group(3))] += 1
        elif command.startswith("python ") and " --out " in command:  # the prepare_data script
            found[("prepare_data", None, None)] += 1
        else:
            assert command.strip() == "None", f"a job that is not a pipeline stage: {command}"
    stats = collections.Counter()
    for rule, count in _job_stats(output).items():
        stats[_stage_rule(rule)] += count
    stats = dict(stats)
    stats.pop("all", None)
    assert stats == dict(collections.Counter(rule for rule, _, _ in found)), output
    return found


def snakemake_plan(project: pathlib.Path) -> Counter[Job]:
    """The jobs ``snakemake --dry-run`` would run."""
    proc = run_in(project, "snakemake", "--dry-run", "--printshellcmds", "--nocolor", "--cores", "1", timeout=300)
    return snakemake_jobs(proc.stdout)


def workflow_runs(project: pathlib.Path):
    return yaml.safe_load((project / "config" / "config.yaml").read_text())["runs"]


def dvc_jobs(project: pathlib.Path, output: str) -> Tuple[Counter[Job], set]:
    """(jobs, bookkeeping stages) that ``dvc repro`` ran, would run (--dry) or restored from its run-cache."""
    names = {PREPARE_DATA_STAGE: ("prepare_data", None, None)}
    for run in workflow_runs(project):
        for stage in STAGES:
            for split in EVAL_SPLITS if stage == "evaluate" else (None,):
                names[stage_name(run, stage, split)] = (STAGES[stage].rule, run, split)
    # A set: a dry run prints both lines for a stage it finds in the run-cache.
    ran = set(re.findall(r"Running stage '([^']+)'", output))
    ran |= set(re.findall(r"Stage '([^']+)' is cached - skipping run", output))
    bookkeeping = ran & {FINGERPRINT_STAGE}
    unknown = ran - bookkeeping - set(names)
    assert not unknown, f"DVC ran stages that are not pipeline stages: {unknown}"
    return collections.Counter(names[name] for name in ran if name not in bookkeeping), bookkeeping


def refresh_bookkeeping(project: pathlib.Path) -> None:
    """What a user runs before DVC after editing: ``aimed dvc-yaml`` and ``aimed fingerprint <runs>``.

    The aimed CLI is called in one process, which saves an interpreter start-up per command.
    """
    commands = [["dvc-yaml"], ["fingerprint", *workflow_runs(project)]]
    run_in(project, sys.executable, "-c",
           f"from aimed.cli import main\nfor argv in {commands!r}:\n    assert main(argv) == 0, argv")


def dvc_plan(project: pathlib.Path) -> Counter[Job]:
    """The jobs ``dvc repro --dry`` would run, once the fingerprint files are up to date."""
    refresh_bookkeeping(project)
    planned, _ = dvc_jobs(project, run_in(project, "dvc", "repro", "--dry", timeout=300).stdout)
    return planned


def dvc_changed(project: pathlib.Path) -> Counter[Job]:
    """The jobs of the stages ``dvc status`` reports as changed, once the fingerprint files are up to date."""
    refresh_bookkeeping(project)
    changed = json.loads(run_in(project, "dvc", "status", "--json", timeout=120).stdout)
    planned, _ = dvc_jobs(project, "".join(f"Running stage '{name}'\n" for name in changed))
    return planned


def dvc_is_clean(project: pathlib.Path) -> bool:
    proc = run_in(project, "dvc", "status", timeout=120)
    return "Data and pipelines are up to date." in proc.stdout


def assert_plans(project: pathlib.Path, expected: Counter[Job], dvc_expected: Optional[Counter[Job]] = None) -> None:
    """Both runners plan exactly ``expected`` (DVC ``dvc_expected`` if given)."""
    assert snakemake_plan(project) == expected, "snakemake --dry-run"
    assert dvc_plan(project) == (expected if dvc_expected is None else dvc_expected), "dvc repro --dry"


@contextlib.contextmanager
def edited(project: pathlib.Path, *paths: str):
    """Undo on exit every change to ``paths`` (files or folders; new ones are removed)."""
    saved = {}
    for rel in paths:
        path = project / rel
        saved[path] = path.read_bytes() if path.is_file() else None
        assert not path.is_dir(), f"{rel}: only files, or folders that do not exist yet"
    try:
        yield
    finally:
        for path, data in saved.items():
            if data is not None:
                path.write_bytes(data)
            elif path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        refresh_bookkeeping(project)


def append(path: pathlib.Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def why(project: pathlib.Path, run: str, stage: str, *split: str) -> str:
    return run_in(project, "aimed", "why", run, stage, *(("--split", *split) if split else ())).stdout
