"""Where the installed aimed keeps its Snakemake workflow, for projects that import it as a module.

The repository's top-level ``Snakefile`` and ``workflow/`` ship inside the package (``aimed/Snakefile``
and ``aimed/workflow`` link to them), so a project's ``Snakefile`` can say::

    module aimed_workflow:
        snakefile: aimed.workflow_files.snakefile()
        config: config

and gets the rules of whichever aimed is installed.
"""

from __future__ import annotations

import importlib.resources
import pathlib


def snakefile() -> str:
    """The path of the packaged ``Snakefile`` that includes every rule of the workflow."""
    return str(importlib.resources.files("aimed") / "Snakefile")


def workflow_config_schema() -> pathlib.Path:
    """The JSON schema of a project's ``config/config.yaml`` (the workflow config)."""
    return pathlib.Path(str(importlib.resources.files("aimed") / "workflow" / "schemas" / "config.schema.yaml"))
