"""The user-code zoo, first half: package-style src/, a generator classifier, a segmentation U-Net."""

import pytest
from zoo_harness import (  # noqa: F401
    test_zoo_deep_edit_reruns_exactly_its_stages,
    test_zoo_project_runs_end_to_end,
    test_zoo_sigterm_mid_epoch_resumes_bitwise,
    zoo_projects,
)

pytestmark = pytest.mark.slow

PROJECTS = ("package_style", "classifier", "segmentation")
#: Generators with class weights, an augmentor and callbacks; per-pixel weights.
PREEMPTED_PROJECTS = ("classifier", "segmentation")
