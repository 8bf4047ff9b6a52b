"""Reject answers that would generate a broken project, before anything is written."""

import re
import sys

ANSWERS = {
    "project_slug": "{{ cookiecutter.project_slug }}",
    "run_name": "{{ cookiecutter.run_name }}",
    "input_height": "{{ cookiecutter.input_height }}",
    "input_width": "{{ cookiecutter.input_width }}",
    "channels": "{{ cookiecutter.channels }}",
    "n_classes": "{{ cookiecutter.n_classes }}",
}

problems = []
for key in ("project_slug", "run_name"):
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", ANSWERS[key]):
        problems.append(f"{key} '{ANSWERS[key]}' must be lower-case letters, digits, '.', '_' or '-'")
for key, low in (("input_height", 4), ("input_width", 4), ("channels", 1), ("n_classes", 2)):
    if not ANSWERS[key].isdigit() or int(ANSWERS[key]) < low:
        problems.append(f"{key} '{ANSWERS[key]}' must be an integer >= {low}")
if ANSWERS["channels"].isdigit() and int(ANSWERS["channels"]) not in (1, 3):
    problems.append(f"channels '{ANSWERS['channels']}' must be 1 (grey) or 3 (RGB)")
if problems:
    sys.exit("cookiecutter: " + "; ".join(problems) + ". Run it again with valid answers.")
