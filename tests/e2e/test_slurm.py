"""The workflow on a SLURM cluster: a single-node cluster on this machine (.ci/slurm/).

The session fixture starts the cluster with ``.ci/slurm/start-local-cluster.sh`` (installing
slurmctld, slurmd, slurm-client and munge with apt when they are missing) and stops it at the
end if it started it. The tests skip, with the reason, only where SLURM cannot be installed:
not root, not Debian, or apt fails. Every Snakemake and SLURM call runs under ``timeout -k``.

- the shrunken example pipeline through ``snakemake --profile profiles/slurm`` gives the same
  results as the laptop run (profiles/default), number for number, with the sbatch flags taken
  from the workflow config's ``resources:``;
- a training job that SLURM requeues (preemption) and one that is cancelled (Snakemake retries
  it) both resume from the last epoch checkpoint instead of starting again;
- a job killed without releasing its lock, the lock rewritten as if on another node, and requeued
  takes its own lock (same job id) at once and resumes bitwise equal from a mid-epoch commit;
- ``distribution: {strategy: multi_worker}`` trains with two SLURM tasks (srun) and exports.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional

import pytest
from conftest import REPO_ROOT, copy_project, update_yaml

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SCRIPTS = REPO_ROOT / ".ci" / "slurm"
RUN = "mnist-tf"

#: The shrunken project: images per split, epochs, and a small model; one run only. Batches of
#: 2 make an epoch (24 steps) last long enough to be interrupted in the middle.
SIZES = {"train": 48, "validation": 24, "test": 24, "epochs": 2}
RUN_OVERRIDES = {"epochs": SIZES["epochs"], "batch_size": 2, "model_builder": {"n_filters": 32},
                 "mlflow": {"enabled": False}}

#: What each job asks SLURM for, through the workflow config (config/config.yaml, resources:).
#: Distinct numbers per rule, so the test can find each one in `scontrol show job`; one CPU
#: each, as the test node has two.
RULE_RESOURCES = {
    "prepare_data": {"runtime": 5, "mem_mb": 1000, "cpus_per_task": 1},
    "validate_data": {"runtime": 6, "mem_mb": 2000, "cpus_per_task": 1},
    "check_preprocessing": {"runtime": 7, "mem_mb": 2000, "cpus_per_task": 1},
    "train": {"runtime": 8, "mem_mb": 3000, "cpus_per_task": 1, "gpu": 1},
    "export": {"runtime": 9, "mem_mb": 2000, "cpus_per_task": 1},
    "evaluate": {"runtime": 10, "mem_mb": 2000, "cpus_per_task": 1},
}

#: The first status check 2 s after a submission (the profile says 20 s; the cluster keeps
#: finished jobs for MinJobAge=600 s, well above 3x this).
FAST_STATUS = ("--slurm-init-seconds-before-status-checks", "2")


# ----------------------------------------------------------------------------- helpers


def _run(cmd: List[str], timeout: int, **kwargs) -> subprocess.CompletedProcess:
    """A command under `timeout -k 10`, so nothing outlives the test; stdout and stderr merged."""
    return subprocess.run(["timeout", "-k", "10", str(timeout), *cmd], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kwargs)


def _snakemake(project: pathlib.Path, *args: str, timeout: int) -> subprocess.Popen:
    """Start `snakemake ARGS` in the project, under `timeout -k 10`; output in snakemake.out."""
    with open(project / "snakemake.out", "w") as out:
        proc = subprocess.Popen(["timeout", "-k", "10", str(timeout), sys.executable, "-m", "snakemake", *args,
                                 "--nocolor"], cwd=project, stdout=out, stderr=subprocess.STDOUT, text=True)
    proc.output_path = project / "snakemake.out"
    return proc


def _slurm_snakemake(project: pathlib.Path, *targets: str, timeout: int) -> subprocess.Popen:
    return _snakemake(project, "--profile", "profiles/slurm", "--workflow-profile", "none", *FAST_STATUS,
                      *targets, timeout=timeout)


def _output(proc: subprocess.Popen) -> str:
    return proc.output_path.read_text(errors="replace")


def _logs(project: pathlib.Path) -> str:
    found = sorted((project / "logs").rglob("*.log")) + sorted((project / ".snakemake" / "slurm_logs").rglob("*.log"))
    return "\n".join(f"--- {p.relative_to(project)}\n{p.read_text(errors='replace')[-3000:]}" for p in found)


def _job(job_id: str) -> Dict[str, str]:
    """`scontrol show job -o ID` as {field: value} (finished jobs stay known for MinJobAge)."""
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30).stdout
    return dict(field.split("=", 1) for field in out.split() if "=" in field)


def _wait_until_the_node_lets_go(job_id: str) -> None:
    """Wait until a job the controller calls finished may be launched again on the node.

    slurmd tears a job down after reporting it complete, and revokes its credential at that
    second; a requeued launch whose new credential is issued in the same second is refused
    ("Killing non-startable batch JobId=N: Job credential revoked" in slurmctld.log: exit 1, run
    time 0, no output), which CI hit when the requeue followed the kill within a second. So: no
    slurmstepd of the job left, then two seconds for the revocation's second to pass.
    """
    deadline = time.monotonic() + 60
    while subprocess.run(["pgrep", "-f", rf"slurmstepd: \[{job_id}\."], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, f"job {job_id}'s slurmstepd still runs 60 s after the job ended"
        time.sleep(0.1)
    time.sleep(2)


def _submitted(output: str) -> Dict[str, List[str]]:
    """{rule: [SLURM job ids]} from Snakemake's 'submitted with SLURM jobid N (log: .../rule_R/...)' lines."""
    jobs: Dict[str, List[str]] = {}
    for job_id, rule in re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+?)/", output):
        jobs.setdefault(rule, []).append(job_id)
    return jobs


def _running_job(comment: str) -> Optional[str]:
    """The id of the running job whose comment (the plugin's rule_<rule>_wildcards_<...>) is given."""
    out = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i|%k"], capture_output=True, text=True,
                         timeout=30).stdout
    for line in out.splitlines():
        job_id, _, job_comment = line.partition("|")
        if job_comment == comment:
            return job_id
    return None


def _state(project: pathlib.Path) -> dict:
    try:
        return json.loads((project / "state" / RUN / "train" / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def _epoch_lines(log: str, epochs: int) -> List[int]:
    """The epochs a train log reports finishing ('epoch k/N: ...'), in order."""
    return [int(k) for k in re.findall(rf"^epoch (\d+)/{epochs}:", log, re.M)]


def _shrink(project: pathlib.Path) -> pathlib.Path:
    update_yaml(project / "config" / "config.yaml", {
        "runs": [RUN],
        "datasets": {"mnist": {f"limit_{s}": SIZES[s] for s in ("train", "validation", "test")}},
        "resources": RULE_RESOURCES,
    })
    update_yaml(project / "runs" / RUN / "config.yaml", RUN_OVERRIDES)
    return project


def _files(folder: pathlib.Path) -> List[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def slurm_cluster():
    """A single-node SLURM cluster on localhost for the session; skips where SLURM cannot be installed."""
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("the SLURM tests need root, to install SLURM with apt and start its daemons")
    if not pathlib.Path("/etc/debian_version").is_file() or shutil.which("apt-get") is None:
        pytest.skip("the SLURM tests need Debian with apt-get, to install slurmctld, slurmd and munge")
    start = time.monotonic()
    proc = subprocess.run(["bash", str(SCRIPTS / "start-local-cluster.sh")], capture_output=True, text=True,
                          timeout=900)
    if proc.returncode == 3:
        reason = (proc.stderr.strip().splitlines() or ["exit code 3"])[-1]
        pytest.skip(f"SLURM cannot be installed here: {reason}")
    if proc.returncode != 0:
        pytest.fail(f"start-local-cluster.sh failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    started = "already running" not in proc.stderr
    print(f"\nSLURM cluster {'started' if started else 'already running'} in {time.monotonic() - start:.1f} s: "
          f"{proc.stderr.strip().splitlines()[-1]}")
    yield
    if started:
        subprocess.run(["bash", str(SCRIPTS / "stop-local-cluster.sh")], timeout=120)


class Pipelines:
    """The shrunken pipeline, started at once through SLURM and on the laptop (profiles/default).

    ``local()`` and ``slurm()`` wait for one run and return it, as ``{"project", "returncode",
    "output", "seconds"}``. The local run ends first; the resume and multi-worker tests work on
    copies of its project while the SLURM run goes on, and the comparison test comes last.
    """

    def __init__(self, base: pathlib.Path) -> None:
        self.projects = {name: _shrink(copy_project(base / name)) for name in ("slurm", "local")}
        self.start = time.monotonic()
        self.procs = {
            "slurm": _slurm_snakemake(self.projects["slurm"], timeout=900),
            "local": _snakemake(self.projects["local"], "--cores", "1", timeout=600),
        }
        self.runs: Dict[str, dict] = {}
        self.ended: Dict[str, float] = {}
        for name in self.procs:
            threading.Thread(target=self._watch, args=(name,), daemon=True).start()

    def _watch(self, name: str) -> None:
        self.procs[name].wait()
        self.ended[name] = time.monotonic()

    def _wait(self, name: str) -> dict:
        if name not in self.runs:
            proc = self.procs[name]
            proc.wait()
            while name not in self.ended:
                time.sleep(0.05)
            self.runs[name] = {"project": self.projects[name], "returncode": proc.returncode,
                               "output": _output(proc), "seconds": self.ended[name] - self.start}
            print(f"\n{name} pipeline: exit code {proc.returncode} after {self.runs[name]['seconds']:.0f} s")
        return self.runs[name]

    def local(self) -> dict:
        return self._wait("local")

    def slurm(self) -> dict:
        return self._wait("slurm")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()  # snakemake cancels its SLURM jobs
                proc.wait(60)


@pytest.fixture(scope="module")
def pipelines(slurm_cluster, tmp_path_factory):
    runs = Pipelines(tmp_path_factory.mktemp("slurm"))
    yield runs
    runs.stop()


def _check(run: dict) -> pathlib.Path:
    if run["returncode"] != 0:
        pytest.fail(f"snakemake failed ({run['returncode']}):\n{run['output'][-15000:]}\n{_logs(run['project'])}")
    return run["project"]


# ----------------------------------------------------------------------------- tests


@pytest.mark.timeout(900)
def test_requeued_or_cancelled_training_resumes_from_its_checkpoint(pipelines, tmp_path):
    """Raise the epochs of a trained run, then interrupt its training twice mid-epoch:
    `scontrol requeue` (what preemption does: SLURM runs the same job again) and `scancel` (the
    job fails, and Snakemake submits it again: resources.train.retries). Each attempt starts at
    the epoch after the last committed one; none starts again from epoch 1."""
    project = tmp_path / "project"
    shutil.copytree(_check(pipelines.local()), project, symlinks=True)
    epochs = 12
    update_yaml(project / "runs" / RUN / "config.yaml", {"epochs": epochs})  # continues the trained state
    trained = _state(project)["epoch"]
    assert trained == SIZES["epochs"]
    log_path = project / "logs" / RUN / "train.log"
    state_file = project / "state" / RUN / "train" / "state.json"
    comment = f"rule_train_wildcards_{RUN}"

    start = time.monotonic()
    proc = _slurm_snakemake(project, f"results/{RUN}/train/history.csv", timeout=600)
    attempts, interrupted = [], []

    def interrupt(how: str) -> None:
        """After two more committed epochs, interrupt the training halfway through the next one."""
        before = _state(project)["epoch"]
        committed = {}  # epoch: when state.json was written for it
        while proc.poll() is None and time.monotonic() - start < 400:
            epoch = _state(project).get("epoch", 0)
            if epoch > before and epoch not in committed:
                committed[epoch] = state_file.stat().st_mtime
            job_id = _running_job(comment)
            if job_id and len(committed) >= 2:
                last, previous = sorted(committed.values())[-1], sorted(committed.values())[-2]
                time.sleep(max(0.0, last + (last - previous) / 2 - time.time()))  # the middle of the next epoch
                subprocess.run(["scontrol", "requeue", job_id] if how == "requeue" else ["scancel", job_id],
                               check=True, timeout=30)
                for _ in range(300):  # until the job's processes are gone
                    if _job(job_id).get("JobState") not in ("RUNNING", "COMPLETING"):
                        break
                    time.sleep(0.1)
                # Read once the attempt has ended: SIGTERM lets it finish the batch in progress and
                # commit, so it may log more epochs after the signal than before it. The requeued
                # job waits for StartTime below, and Snakemake's resubmission for its status check.
                attempts.append(log_path.read_text())
                interrupted.append({"how": how, "job": job_id, "epoch": _state(project)["epoch"],
                                    "second": round(time.monotonic() - start)})
                if how == "requeue":  # a requeued job waits ~2 minutes before it may start again
                    _wait_until_the_node_lets_go(job_id)
                    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True, timeout=30)
                return
            time.sleep(0.1)
        pytest.fail(f"training on SLURM never committed two epochs after epoch {before}:\n"
                    f"{_output(proc)[-10000:]}\n{_logs(project)}")

    interrupt("requeue")
    interrupt("cancel")
    proc.wait()
    seconds = time.monotonic() - start
    output = _output(proc)
    if proc.returncode != 0:
        pytest.fail(f"snakemake failed ({proc.returncode}):\n{output[-15000:]}\n{_logs(project)}")
    attempts.append(log_path.read_text())
    print(f"\nresume test: interrupted {interrupted}; wall time {seconds:.0f} s")

    # Only the training ran, as two SLURM jobs: the requeued one (run twice), then Snakemake's resubmission.
    jobs = _submitted(output)
    assert list(jobs) == ["train"] and len(jobs["train"]) == 2, output[-10000:]
    first, second = jobs["train"]
    assert first == interrupted[0]["job"] == interrupted[1]["job"]
    assert _job(first)["JobState"] == "CANCELLED" and _job(first)["Restarts"] == "1", _job(first)
    assert _job(second)["JobState"] == "COMPLETED", _job(second)

    # Each attempt trained on from where the previous one was interrupted.
    starts = [trained, interrupted[0]["epoch"], interrupted[1]["epoch"]]
    ends = [interrupted[0]["epoch"], interrupted[1]["epoch"], epochs]
    assert trained < ends[0] < ends[1] < epochs, interrupted
    for attempt, log in enumerate(attempts):
        done = _epoch_lines(log, epochs)
        assert done and done[0] == starts[attempt] + 1, (attempt, starts, log[-3000:])
        assert done == list(range(done[0], done[-1] + 1)), log[-3000:]
        # the last line may be missing when a SIGKILL came between a commit and its line
        assert ends[attempt] - 1 <= done[-1] <= ends[attempt], (attempt, ends, log[-3000:])

    # Nothing of the interrupted attempts lives on (the cluster tracks jobs by process group).
    for _ in range(150):
        leftover = subprocess.run(["pgrep", "-f", str(project)], capture_output=True, text=True).stdout.split()
        if not leftover:
            break
        time.sleep(0.1)
    assert not leftover, subprocess.run(["ps", "-o", "pid,ppid,stat,cmd", "-p", ",".join(leftover)],
                                        capture_output=True, text=True).stdout

    assert _state(project)["epoch"] == epochs
    history = (project / "results" / RUN / "train" / "history.csv").read_text().splitlines()
    assert [int(line.split(",")[0]) for line in history[1:]] == list(range(1, epochs + 1))


@pytest.mark.timeout(600)
def test_requeue_after_a_kill_on_another_node_takes_its_own_lock_and_resumes_bitwise_equal(pipelines, tmp_path):
    """A training job dies without releasing its lock (SIGKILL), the lock is rewritten as if the job
    had run on another node, and SLURM requeues the job. The requeued job (same job id) takes its
    own lock over at once, long before the lease expires, resumes from the last mid-epoch commit
    at the batch after it, and ends bitwise equal to an uninterrupted training."""
    import numpy as np

    trained = _check(pipelines.local())
    overrides = {"epochs": 5, "training": {"checkpoint_every": 4}}
    reference, project = tmp_path / "reference", tmp_path / "project"
    for copy in (reference, project):
        shutil.copytree(trained, copy, symlinks=True)
        update_yaml(copy / "runs" / RUN / "config.yaml", overrides)
    uninterrupted = _run(["aimed", "train", RUN], timeout=300, cwd=reference)
    assert uninterrupted.returncode == 0, uninterrupted.stdout[-5000:]

    log_path = project / "requeued.log"
    submit = _run(["sbatch", "--parsable", "--requeue", "--cpus-per-task", "1", "--mem", "3000", "--time", "10",
                   "--output", str(log_path), "--open-mode", "append", "--chdir", str(project),
                   "--wrap", f"aimed train {RUN}"], timeout=60)
    assert submit.returncode == 0, submit.stdout
    job_id = submit.stdout.strip().split(";")[0]
    lock = project / "state" / RUN / "train.lock"
    deadline = time.monotonic() + 300
    while not (_state(project).get("epoch", 0) >= SIZES["epochs"] + 1 and _state(project).get("batch", 0) > 0):
        assert time.monotonic() < deadline and _job(job_id).get("JobState") in ("PENDING", "RUNNING", "CONFIGURING"), \
            f"no mid-epoch commit of the SLURM job:\n{log_path.read_text(errors='replace')[-5000:] if log_path.exists() else ''}"
        time.sleep(0.05)
    holder = json.loads(lock.read_text())
    assert holder["slurm_job"] == job_id, holder
    os.kill(holder["pid"], 9)  # no handler runs: the lock and the job's half-epoch stay as they are
    for _ in range(300):
        if _job(job_id).get("JobState") not in ("RUNNING", "COMPLETING"):
            break
        time.sleep(0.1)
    _wait_until_the_node_lets_go(job_id)
    committed = (_state(project)["epoch"], _state(project)["batch"])
    moved = dict(json.loads(lock.read_text()), host="other-node-17", pid=4242)
    lock.write_text(json.dumps(moved))
    assert moved["expires"] > time.time() + 30, "the lease must still be running for the test to mean anything"

    requeued_at = time.time()
    subprocess.run(["scontrol", "requeue", job_id], check=True, timeout=30)
    for _ in range(300):  # the controller moves the failed job back to the queue in its own time
        if _job(job_id).get("JobState") not in ("FAILED", "COMPLETING"):
            break
        time.sleep(0.1)
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True, timeout=30)
    deadline = time.monotonic() + 300
    while _job(job_id).get("JobState") != "COMPLETED":
        assert time.monotonic() < deadline and _job(job_id).get("JobState") not in ("FAILED", "CANCELLED"), \
            f"{_job(job_id)}\n{log_path.read_text(errors='replace')[-5000:]}"
        time.sleep(0.2)
    log = log_path.read_text(errors="replace")
    print(f"\nrequeue test: killed after the commit {committed}; job {job_id} restarts {_job(job_id)['Restarts']}")
    assert _job(job_id)["Restarts"] == "1", _job(job_id)
    assert "already training" not in log, log[-5000:]
    resumed = re.findall(rf"resuming run '{RUN}' at epoch (\d+) of \d+, batch (\d+)", log)
    assert [(int(e), int(b)) for e, b in resumed][-1] == (committed[0] + 1, committed[1] + 1), log[-5000:]
    assert time.time() < moved["expires"] or requeued_at < moved["expires"], "resumed only after the lease"
    assert not lock.exists()

    final = f"epoch-{overrides['epochs']:05d}.npz"
    with np.load(project / "state" / RUN / "train" / final) as got, \
            np.load(reference / "state" / RUN / "train" / final) as want:
        assert got.files == want.files
        different = [k for k in got.files if not np.array_equal(got[k], want[k])]
    assert not different, f"arrays {different} differ from the uninterrupted training"
    history = pathlib.Path("results", RUN, "train", "history.csv")
    assert (project / history).read_text() == (reference / history).read_text()


@pytest.mark.timeout(600)
def test_multi_worker_training_with_two_slurm_tasks(pipelines, tmp_path):
    """`aimed train` under srun with 2 tasks (MultiWorkerMirroredStrategy over SlurmClusterResolver),
    then `aimed export`, in one sbatch job; the results have the shape of a single worker's."""
    import pandas as pd

    single = _check(pipelines.local())
    project = tmp_path / "project"
    shutil.copytree(single, project, symlinks=True)
    update_yaml(project / "runs" / RUN / "config.yaml", {"distribution": {"strategy": "multi_worker"}})

    start = time.monotonic()
    submit = _run(["sbatch", "--parsable", "--ntasks", "2", "--cpus-per-task", "1", "--mem-per-cpu", "2000",
                   "--time", "10", "--output", str(project / "multi_worker.log"), "--chdir", str(project),
                   "--wrap", f"srun --kill-on-bad-exit=1 aimed train {RUN} && aimed export {RUN}"], timeout=60)
    assert submit.returncode == 0, submit.stdout
    job_id = submit.stdout.strip().split(";")[0]
    state = None
    while time.monotonic() - start < 400:
        state = _job(job_id).get("JobState")
        if state not in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING"):
            break
        time.sleep(0.5)
    else:
        subprocess.run(["scancel", job_id], timeout=30)
    seconds = time.monotonic() - start
    log = (project / "multi_worker.log").read_text(errors="replace")
    print(f"\nmulti-worker job {job_id}: {state} in {seconds:.0f} s")
    assert state == "COMPLETED", log[-15000:]

    # Both tasks trained as workers of one strategy; only the chief wrote the results.
    assert log.count("with CollectiveAllReduceStrategy on 2 replica(s)") == 2, log[-10000:]
    assert len(_epoch_lines(log, SIZES["epochs"])) == 2 * SIZES["epochs"], log[-10000:]
    results = project / "results" / RUN
    multi = pd.read_csv(results / "train" / "history.csv")
    reference = pd.read_csv(single / "results" / RUN / "train" / "history.csv")
    assert list(multi.columns) == list(reference.columns)
    assert len(multi) == len(reference) == SIZES["epochs"]
    assert multi.notna().all().all()
    card = json.loads((results / "export" / "model_card.json").read_text())
    assert isinstance(card, dict) and card
    assert (results / "export" / "savedmodel" / "saved_model.pb").is_file()


@pytest.mark.timeout(900)
def test_pipeline_on_slurm_matches_the_local_run(pipelines):
    import pandas as pd

    slurm, local = _check(pipelines.slurm()), _check(pipelines.local())

    # Every rule ran as its own SLURM job, with the resources of the workflow config.
    jobs = _submitted(pipelines.slurm()["output"])
    assert {rule: len(ids) for rule, ids in jobs.items()} == {
        "prepare_data": 1, "validate_data": 1, "check_preprocessing": 1, "train": 1, "export": 1, "evaluate": 2}
    for rule, ids in jobs.items():
        for job_id in ids:
            job = _job(job_id)
            wanted = RULE_RESOURCES[rule]
            assert job["JobState"] == "COMPLETED", (rule, job)
            assert job["TimeLimit"] == f"00:{wanted['runtime']:02d}:00", (rule, job)
            assert job["MinMemoryNode"] == f"{wanted['mem_mb']}M", (rule, job)
            assert job["NumCPUs"] == str(wanted["cpus_per_task"]), (rule, job)
            assert job["Account"] == "(null)", f"no account is passed by default: {job}"
            assert job["Requeue"] == "1", f"jobs are submitted with --requeue (slurm-requeue): {job}"
            assert ("gpu" in job.get("TresPerJob", "")) == (rule == "train"), (rule, job)

    # The same files, and the same numbers: training and evaluation are deterministic.
    assert _files(slurm / "results") == _files(local / "results")
    history = {name: pd.read_csv(p / "results" / RUN / "train" / "history.csv") for name, p in
               (("slurm", slurm), ("local", local))}
    assert len(history["slurm"]) == SIZES["epochs"]
    pd.testing.assert_frame_equal(history["slurm"], history["local"], check_exact=True)
    for split in ("validation", "test"):
        reports = [pd.read_csv(p / "results" / RUN / "evaluate" / split / "report.csv") for p in (slurm, local)]
        assert len(reports[0]) == SIZES[split]
        pd.testing.assert_frame_equal(reports[0], reports[1], check_exact=True)
