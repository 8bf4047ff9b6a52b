"""TensorFlow's import for the stages: quiet, and without Keras' scikit-learn wrappers."""

from __future__ import annotations

import importlib
import os
import re
import sys
import tempfile

#: TensorFlow's start-up chatter on stderr, printed below any log level: absl's notice that logging
#: is not set up yet, and its info lines (oneDNN, CPU features).
_TF_IMPORT_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|I\d{4} )")


def import_tensorflow() -> None:
    """Import TensorFlow and Keras for a stage, quietly and without Keras' scikit-learn wrappers.

    At import, Keras imports scikit-learn (installed with MLflow) only for ``keras.wrappers``:
    about 1.3 s of each stage's start-up on 2 cores, and no stage uses them. Where scikit-learn
    is already imported, Keras gets it as usual; scikit-learn itself stays importable. What the
    import writes to stderr is kept, except the info lines that ignore ``TF_CPP_MIN_LOG_LEVEL``.
    """
    hide_sklearn = "sklearn" not in sys.modules
    if hide_sklearn:
        sys.modules["sklearn"] = None  # `import sklearn` raises ImportError, and Keras leaves its wrappers out
    sys.stderr.flush()
    saved_fd = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            importlib.import_module("tensorflow")
            importlib.import_module("keras")
        finally:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            if hide_sklearn:
                del sys.modules["sklearn"]
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                    if not _TF_IMPORT_NOISE.match(line)]
            sys.stderr.write("".join(kept))
