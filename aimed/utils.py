"""``from aimed.utils import ConfigStruct, load_config_file``: the import path of code written for ``abstractions.utils``."""

from __future__ import annotations

import pathlib
from typing import Union

from aimed.config import ConfigStruct, load_config

__all__ = ["ConfigStruct", "load_config_file"]


def load_config_file(path: Union[str, pathlib.Path]) -> ConfigStruct:
    """Load a run config, as ``abstractions.utils.load_config_file`` did: :func:`aimed.load_config`.

    aimed also validates it against the run schema and merges the defaults of keys left out.
    """
    return load_config(path)
