"""Where the installed aimed keeps its Snakemake workflow, for projects that import it as a module.

The repository's top-level ``Snakefile`` and ``workflow/`` ship inside the package (``aimed/Snakefile``
and ``aimed/workflow`` link to them, and setuptools copies them into the wheel), so a project's
``Snakefile`` can say::

    module aimed_workflow:
        snakefile: aimed.workflow_files.snakefile()
        config: config

    use rule * from aimed_workflow

and gets the rules of whichever aimed is installed.
"""

from __future__ import annotations

import importlib.resources
import pathlib


def _packaged(*parts: str) -> pathlib.Path:
    return pathlib.Path(str(importlib.resources.files("aimed").joinpath(*parts)))


def snakefile() -> pathlib.Path:
    """The packaged ``Snakefile``: the workflow config's validation, every rule, and rule ``all``."""
    return _packaged("Snakefile")


def workflow_config_schema() -> pathlib.Path:
    """The JSON schema of a project's ``config/config.yaml`` (the workflow config)."""
    return _packaged("workflow", "schemas", "config.schema.yaml")
