"""The user-code zoo, second half: regression and a multi-output model, custom layers, tf.data with bytes ids (Parquet report)."""

import pytest
from zoo_harness import (  # noqa: F401
    test_zoo_deep_edit_reruns_exactly_its_stages,
    test_zoo_project_runs_end_to_end,
    test_zoo_sigterm_mid_epoch_resumes_bitwise,
    zoo_projects,
)

pytestmark = pytest.mark.slow

PROJECTS = ("regression", "custom_layers", "tfdata_bytes")
#: Several outputs (dict y) and a scalar target; stateful random flips in a tf.data map.
PREEMPTED_PROJECTS = ("regression", "tfdata_bytes")
