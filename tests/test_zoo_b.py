"""The user-code zoo, second half: regression and a multi-output model, custom layers, tf.data with bytes ids."""

from __future__ import annotations

import pytest

from zoo_harness import check_deep_edit_reruns_exactly, check_zoo_project_end_to_end, zoo_projects  # noqa: F401

pytestmark = pytest.mark.slow

PROJECTS = ("regression", "custom_layers", "tfdata_bytes")


@pytest.mark.parametrize("zoo_name", PROJECTS)
def test_zoo_project_runs_end_to_end(zoo_projects, zoo_name):  # noqa: F811
    check_zoo_project_end_to_end(zoo_projects, zoo_name)


@pytest.mark.parametrize("zoo_name", PROJECTS)
def test_zoo_deep_edit_reruns_exactly_its_stages(zoo_projects, zoo_name):  # noqa: F811
    check_deep_edit_reruns_exactly(zoo_projects, zoo_name)
