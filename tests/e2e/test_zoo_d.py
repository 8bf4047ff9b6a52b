"""The user-code zoo, fourth part: a two-input classifier (dict x of a PNG scan and clinical features), logits, string ids."""

import pytest
from zoo_harness import (  # noqa: F401
    test_zoo_deep_edit_reruns_exactly_its_stages,
    test_zoo_project_runs_end_to_end,
    test_zoo_sigterm_mid_epoch_resumes_bitwise,
    zoo_projects,
)

pytestmark = pytest.mark.slow

PROJECTS = ("clinical",)
#: tf.data with stateless augmentation, EarlyStopping and ReduceLROnPlateau callbacks, class weights.
PREEMPTED_PROJECTS = ("clinical",)
