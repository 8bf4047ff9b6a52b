"""The user-code zoo, third part: one model with two heads (dict outputs, dict per-pixel weights), int ids."""

import pytest
from zoo_harness import (  # noqa: F401
    test_zoo_deep_edit_reruns_exactly_its_stages,
    test_zoo_project_runs_end_to_end,
    test_zoo_sigterm_mid_epoch_resumes_bitwise,
    zoo_projects,
)

pytestmark = pytest.mark.slow

PROJECTS = ("multitask",)
#: Segmentation + classification heads from a Python generator, per-pixel weights for one head only.
PREEMPTED_PROJECTS = ("multitask",)
