"""The quality gate under Snakemake, and the HTML report of ``snakemake --report``.

The shrunken project that the whole workflow has already built (``built_project``) gets, for
run mnist-tf, a gate its model cannot meet; then it goes through Snakemake four times: with the
gate (only the validation evaluation reruns; the run must fail, naming the threshold, and keep
the evaluation), again (it must fail again: a failed gate is never up to date), with
``AIMED_NO_GATE=1`` (the run passes), and with ``--report report.html``. The report is then
checked for the embedded training curves, confusion matrix and worst-k grid, and rendered by
headless Chromium.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
from typing import Any, Dict

import pytest
from conftest import project_env, update_yaml

from aimed.pipeline import stage_outputs

pytestmark = pytest.mark.slow

RUN = "mnist-tf"
GATE = {"accuracy": {"min": 0.999}}
#: The report() files every HTML report must carry, relative to the project.
REPORT_IMAGES = (
    f"results/{RUN}/train/curves.png",
    f"results/{RUN}/evaluate/validation/plots/confusion_matrix.png",
    f"results/{RUN}/evaluate/validation/plots/worst.png",
)


def _snakemake(project: pathlib.Path, *args: str, env: Dict[str, str] = None, timeout: float = 900):
    """``snakemake ARGS`` with the gate on unless ``env`` turns it off; output merged into ``.stdout``."""
    base = {k: v for k, v in project_env(project).items() if k != "AIMED_NO_GATE"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--nocolor", *args], cwd=project, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=timeout, env={**base, **(env or {})},
    )


@pytest.fixture(scope="module")
def pipeline(built_project) -> Dict[str, Any]:
    """The built project after a gated run that fails, a plain rerun, a run with AIMED_NO_GATE=1 and ``--report``.

    What the failed run left behind is recorded before the next run replaces it.
    """
    project = built_project
    update_yaml(project / "runs" / RUN / "config.yaml", {"evaluation": {"thresholds": GATE}})
    failed = _snakemake(project, "--cores", "2", "--resources", "gpu=1")
    evaluation = project / "results" / RUN / "evaluate" / "validation"
    left = {
        "outputs": {path: (project / path).exists() for path in stage_outputs("evaluate", run=RUN, split="validation")},
        "summary": json.loads((evaluation / "summary.json").read_text()) if (evaluation / "summary.json").is_file()
        else None,
        "card": json.loads((evaluation / "model_card.json").read_text()) if (evaluation / "model_card.json").is_file()
        else None,
        "log": (project / "logs" / RUN / "evaluate_validation.log").read_text(errors="replace")
        if (project / "logs" / RUN / "evaluate_validation.log").is_file() else "",
    }
    again = _snakemake(project, "--cores", "2", "--resources", "gpu=1")
    passed = _snakemake(project, "--cores", "2", "--resources", "gpu=1", env={"AIMED_NO_GATE": "1"})
    report = _snakemake(project, "--report", "report.html") if passed.returncode == 0 else None
    return {"project": project, "failed": failed, "left": left, "again": again, "passed": passed, "report": report}


def test_failed_gate_fails_the_snakemake_run(pipeline):
    failed, left = pipeline["failed"], pipeline["left"]
    assert failed.returncode != 0, failed.stdout[-5000:]
    summary = left["summary"]
    assert summary is not None, f"the failed evaluation left no summary.json:\n{failed.stdout[-10000:]}"
    accuracy = summary["classification"]["accuracy"]
    message = f"failed its quality gate on the validation split: accuracy = {accuracy:.6g}, required >= 0.999"
    assert message in left["log"]
    assert message in failed.stdout  # show-failed-logs: Snakemake's own output names the threshold
    assert "Error in rule evaluate" in failed.stdout
    # The gate is a key of the validation evaluation's fingerprint only: nothing upstream reruns.
    started = re.findall(r"^Job \d+: ([\w-]+):", failed.stdout, re.M)  # each job's message names its stage
    assert started == ["evaluate"], failed.stdout[-5000:]

    # keep-incomplete: the failed job's outputs stay and say that the model is not blessed; only
    # fingerprint.json, the record of a completed stage, is missing.
    missing = [path for path, exists in left["outputs"].items() if not exists]
    assert missing == [f"results/{RUN}/evaluate/validation/fingerprint.json"], left["outputs"]
    assert summary["blessed"] is False
    assert summary["gate"]["failures"] == [f"accuracy = {accuracy:.6g}, required >= 0.999"]
    assert left["card"]["evaluation"]["blessed"] is False


def test_failed_gate_is_not_up_to_date(pipeline):
    """Snakemake records a failed job's kept outputs as finished: the next run must still not pass the gate."""
    again = pipeline["again"]
    assert again.returncode != 0, again.stdout[-5000:]
    assert "Nothing to be done" not in again.stdout
    assert "failed its quality gate on the validation split: accuracy = " in again.stdout


def test_no_gate_env_passes_the_snakemake_run(pipeline):
    passed, project = pipeline["passed"], pipeline["project"]
    assert passed.returncode == 0, passed.stdout[-10000:]
    assert f"evaluate: evaluating run {RUN} on the validation split" in passed.stdout  # the job ran again
    assert re.search(r"Finished jobid: \d+ \(Rule: evaluate\)", passed.stdout), passed.stdout[-5000:]
    log = (project / "logs" / RUN / "evaluate_validation.log").read_text()
    assert "failed its quality gate" in log and "(not failing: the gate is off)" in log
    summary = json.loads((project / "results" / RUN / "evaluate" / "validation" / "summary.json").read_text())
    assert summary["blessed"] is False
    dry = _snakemake(project, "--dry-run", "--cores", "1", env={"AIMED_NO_GATE": "1"})
    assert "Nothing to be done" in dry.stdout, dry.stdout[-5000:]


def _report_html(pipeline) -> str:
    if pipeline["report"] is None:
        pytest.fail("the AIMED_NO_GATE=1 run failed, so no report was built")
    assert pipeline["report"].returncode == 0, pipeline["report"].stdout[-10000:]
    return (pipeline["project"] / "report.html").read_text()


def test_report_embeds_the_images(pipeline):
    """Snakemake 9 embeds each report() file in the page's JSON data, keyed by its path, as a data URI:
    ``"<path>": {..., "data": "data:image/png;charset=utf8;filename=<name>;base64,<bytes>"}``.
    """
    html = _report_html(pipeline)
    project = pipeline["project"]
    for image in REPORT_IMAGES:
        name = pathlib.PurePosixPath(image).name
        data = base64.b64encode((project / image).read_bytes()).decode()
        assert f'"{image}": {{"name": "{name}"' in html, f"{image} is not a result of report.html"
        assert re.search(rf'data:image/png;[^,"]*filename={re.escape(name)};base64,{re.escape(data)}"', html), (
            f"{image} is not embedded in report.html")
    assert not re.search(r"""(src|href)=["']https?:""", html), "report.html loads something from the network"


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        # The lock timeout: the SLURM tests may be installing their packages at the same time.
        install = ["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=600", "chromium"]
        if subprocess.run(install, capture_output=True, env=env, timeout=900).returncode != 0:
            subprocess.run(["apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=600"], capture_output=True, env=env,
                           timeout=900)
            subprocess.run(install, capture_output=True, env=env, timeout=900)
        found = shutil.which("chromium")
    if found is None:
        print("skipping: chromium is not installed and `apt-get install -y chromium` could not install it")
        pytest.skip("chromium is not installed and could not be installed with apt-get")
    return found


def _chromium_args(tmp_path: pathlib.Path) -> list:
    return [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"]


def test_report_renders_in_chromium(pipeline, tmp_path):
    _report_html(pipeline)
    url = (pipeline["project"] / "report.html").as_uri()
    args = _chromium_args(tmp_path)
    shot = tmp_path / "report.png"
    proc = subprocess.run([*args, f"--screenshot={shot}", url], capture_output=True, text=True, timeout=180)
    assert shot.is_file(), proc.stderr[-5000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (1000, 1400)
    assert pixels.std() > 0.01, "the screenshot is blank"
    assert shot.stat().st_size > 20000

    # The page's scripts ran and built the navigation from the report's data: the result
    # categories (the stages with report() files) are in the rendered text, outside any script.
    dom = subprocess.run([*args, "--virtual-time-budget=15000", "--dump-dom", url], capture_output=True, text=True,
                         timeout=180).stdout
    body = re.sub(r"<script.*?</script>", "", dom[dom.find("<body"):], flags=re.S)
    text = " ".join(re.sub(r"<[^>]+>", " ", body).split())
    assert "Snakemake Report" in text and "Results" in text, text[:2000]
    for category in ("check-preprocessing", "evaluate", "train"):
        assert re.search(rf"Results.*\b{category}\b", text), f"no result category {category}: {text[:2000]}"



class DevTools:
    """Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``).

    Chromium reads commands from its fd 3 and writes replies to its fd 4, each a JSON message
    ending in a NUL byte; this needs no WebDriver and no package beyond Chromium itself.
    """

    def __init__(self, args: list, url: str, log: pathlib.Path) -> None:
        # Chromium's ends of the pipes are first moved above fd 4, so that putting them on fds 3 and 4
        # in the child cannot overwrite one with the other (in an xdist worker they can be fd 3 or 4).
        # close_fds=False keeps 3 and 4 open after preexec_fn; Python's own fds are close-on-exec.
        to_read, to_write = os.pipe()
        from_read, from_write = os.pipe()
        to_read, from_write = (self._above_4(fd) for fd in (to_read, from_write))

        def onto_3_and_4() -> None:
            os.dup2(to_read, 3)
            os.dup2(from_write, 4)

        self.log = log
        with open(log, "wb") as output:
            self.proc = subprocess.Popen([*args, "--remote-debugging-pipe", url], close_fds=False,
                                         preexec_fn=onto_3_and_4, stdout=output, stderr=output)
        os.close(to_read)
        os.close(from_write)
        self._commands = os.fdopen(to_write, "wb", buffering=0)
        self._replies = os.fdopen(from_read, "rb", buffering=0)
        self._pending = b""
        self._id = 0
        self._session = None
        page = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self._session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]

    @staticmethod
    def _above_4(fd: int) -> int:
        moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 5)
        os.close(fd)
        return moved

    def call(self, method: str, **params) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if self._session:
            message["sessionId"] = self._session
        self._commands.write(json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._pending:
                chunk = self._replies.read(1 << 16)
                if not chunk:
                    raise RuntimeError(f"chromium closed its DevTools pipe during {method}; its output:\n"
                                       + self.log.read_text(errors="replace")[-5000:])
                self._pending += chunk
            raw, self._pending = self._pending.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def js(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := self.js(expression)):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            time.sleep(0.1)
        return value

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)
        self._commands.close()
        self._replies.close()


def _click_link(text: str) -> str:
    """JS: click the link or button whose text is ``text``; true if there was one."""
    return (f"(() => {{ const found = Array.from(document.querySelectorAll('a, button'))"
            f".find(e => e.innerText.trim() === {json.dumps(text)}); if (found) found.click(); return !!found; }})()")


def _click_eye_of(path: str) -> str:
    """JS: click the 'show' (eye) button of the result row of ``path``; true if there was one."""
    return (f"(() => {{ const cell = Array.from(document.querySelectorAll('td'))"
            f".find(e => e.innerText.trim() === {json.dumps(path)}); "
            f"const eye = cell && cell.parentElement.querySelector('a[iconname=eye]'); "
            f"if (eye) eye.click(); return !!eye; }})()")


def test_report_shows_each_image_when_opened_in_chromium(pipeline, tmp_path):
    """Open report.html, click through to each result (category, run, the eye button), as a reader
    would; the page then shows the PNG itself, decoded at its real size, and a screenshot has it."""
    import matplotlib.image

    _report_html(pipeline)
    project = pipeline["project"]
    browser = DevTools(_chromium_args(tmp_path), (project / "report.html").as_uri(), tmp_path / "chromium.log")
    try:
        for image in REPORT_IMAGES:
            category = pathlib.PurePosixPath(image).parts[2].replace("_", "-")  # results/<run>/<stage>/...
            browser.wait_for(_click_link("Results") + " || true")
            assert browser.wait_for(_click_link(category)), f"no result category {category}"
            assert browser.wait_for(_click_link(RUN)), f"no subcategory {RUN} under {category}"
            assert browser.wait_for(_click_eye_of(image)), f"{image} is not listed under {category} / {RUN}"
            name = pathlib.PurePosixPath(image).name
            shown = browser.wait_for(
                "(() => { const img = Array.from(document.images).find(i => i.src.includes("
                + json.dumps(f"filename={name};") + ") && i.complete && i.naturalWidth > 0); "
                "if (!img) return null; const box = img.getBoundingClientRect(); "
                "return {src: img.src, width: img.naturalWidth, height: img.naturalHeight, "
                "box: [box.left, box.top, box.width, box.height]}; })()")
            expected = matplotlib.image.imread(project / image)
            assert (shown["height"], shown["width"]) == expected.shape[:2], f"{image} is shown at another size"
            assert shown["src"].endswith(base64.b64encode((project / image).read_bytes()).decode())
            shot = tmp_path / f"{name}.png"
            shot.write_bytes(base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"]))
            pixels = matplotlib.image.imread(shot)
            left, top, width, height = (int(v) for v in shown["box"])
            assert width > 100 and height > 100, f"{image} is shown only {width}x{height} px"
            region = pixels[top:top + height, left:left + width]
            assert region.std() > 0.05, f"the screenshot shows {image}'s place blank"
            print(f"\n{image}: shown {width}x{height} px, screenshot {shot}")
    finally:
        browser.close()
