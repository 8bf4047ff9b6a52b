"""The user-code zoo, first half: package-style src/, a generator classifier, a segmentation U-Net."""

import pytest
from zoo_harness import test_zoo_deep_edit_reruns_exactly_its_stages, test_zoo_project_runs_end_to_end, zoo_projects  # noqa: F401

pytestmark = pytest.mark.slow

PROJECTS = ("package_style", "classifier", "segmentation")
