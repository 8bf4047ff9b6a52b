"""The user-code zoo, first half: package-style src/, a generator classifier, a segmentation U-Net."""

from __future__ import annotations

import pytest

from zoo_harness import check_deep_edit_reruns_exactly, check_zoo_project_end_to_end, zoo_projects  # noqa: F401

pytestmark = pytest.mark.slow

PROJECTS = ("package_style", "classifier", "segmentation")


@pytest.mark.parametrize("zoo_name", PROJECTS)
def test_zoo_project_runs_end_to_end(zoo_projects, zoo_name):  # noqa: F811
    check_zoo_project_end_to_end(zoo_projects, zoo_name)


@pytest.mark.parametrize("zoo_name", PROJECTS)
def test_zoo_deep_edit_reruns_exactly_its_stages(zoo_projects, zoo_name):  # noqa: F811
    check_deep_edit_reruns_exactly(zoo_projects, zoo_name)
