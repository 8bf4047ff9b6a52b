"""Resolve component class paths from the config to classes inside the run's ``src_code_path``."""

from __future__ import annotations

import importlib
import inspect
import pathlib
import sys
from typing import Any, Optional

from aimed.components import COMPONENT_KEYS
from aimed.errors import ComponentError, ConfigError

_loaded_source_dirs: set = set()


def source_dir(config: Any, project_dir: pathlib.Path) -> pathlib.Path:
    """The absolute ``src_code_path`` of a run, which must be an existing folder."""
    path = (project_dir / config.src_code_path).resolve()
    if not path.is_dir():
        raise ConfigError(
            f"{config.source}: key 'src_code_path' is '{config.src_code_path}', but {path} is not a folder. "
            f"Set it to the folder that holds your component modules, relative to {project_dir}."
        )
    return path


def _forget_other_sources(src: pathlib.Path) -> None:
    """Drop modules imported from another run's source folder, so same-named modules don't clash.

    Each other folder is forgotten once: its modules leave ``sys.modules`` and the folder leaves
    ``sys.path``, so later calls for the same ``src`` do not rescan ``sys.modules``.
    """
    others = _loaded_source_dirs - {src}
    if others:
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None)
            if file and any(pathlib.Path(file).resolve().is_relative_to(other) for other in others):
                del sys.modules[name]
        for other in others:
            if str(other) in sys.path:
                sys.path.remove(str(other))
        _loaded_source_dirs.difference_update(others)
    _loaded_source_dirs.add(src)
    if str(src) in sys.path:
        sys.path.remove(str(src))
    sys.path.insert(0, str(src))


def _module_candidates(src: pathlib.Path, module_name: str) -> list:
    rel = pathlib.Path(*module_name.split("."))
    return [src / rel.with_suffix(".py"), src / rel / "__init__.py"]


def _available_modules(src: pathlib.Path) -> str:
    names = sorted(p.stem for p in src.glob("*.py")) + sorted(
        p.parent.name for p in src.glob("*/__init__.py")
    )
    return ", ".join(names) or "none"


def _classes_in(module_file: pathlib.Path) -> list:
    """Names of the classes defined at the top of a module file, read without importing it."""
    import ast

    try:
        tree = ast.parse(module_file.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return []
    return sorted(node.name for node in tree.body if isinstance(node, ast.ClassDef))


def load_class(config: Any, key: str, project_dir: pathlib.Path) -> Optional[type]:
    """Return the class named by ``config[key]``, checked against the key's base class.

    Returns ``None`` for an optional component left unset (``augmentor_class``).

    Raises:
        ComponentError: the module or class is missing, fails to import, or has the wrong base.
    """
    base = COMPONENT_KEYS[key]
    class_path = config.get(key)
    if class_path is None:
        return None
    src = source_dir(config, project_dir)
    module_name, _, class_name = class_path.rpartition(".")
    where = f"{config.source}: key '{key}' is '{class_path}'"
    candidates = _module_candidates(src, module_name)
    module_file = next((c for c in candidates if c.is_file()), None)
    if module_file is None:
        raise ComponentError(
            f"{where}, but there is no module '{module_name}' in {src} (searched "
            f"{' and '.join(str(c) for c in candidates)}). Modules found there: {_available_modules(src)}. "
            f"Fix the module part of the class path or the 'src_code_path' key."
        )
    _forget_other_sources(src)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module failed at import time: report it as theirs
        raise ComponentError(
            f"{where}, and importing {module_file} failed with {type(exc).__name__}: {exc}. "
            f"Fix that module; run `python -c 'import {module_name}'` inside {src} to see the traceback."
        ) from exc
    module_path = pathlib.Path(getattr(module, "__file__", "") or "").resolve()
    if module_path != module_file.resolve():
        raise ComponentError(
            f"{where}, and {module_file} exists, but 'import {module_name}' loaded {module_path} instead, "
            f"an installed module of the same name. Rename your module so it does not shadow it."
        )
    cls = getattr(module, class_name, None)
    submodule = next((c for c in _module_candidates(src, class_path) if c.is_file()), None)
    if submodule is not None and (cls is None or inspect.ismodule(cls)):
        raise ComponentError(
            f"{where}, which names the module {submodule}, not a class in it. A class path ends with the class: "
            f"write '{class_path}.<ClassName>', with one of the classes defined there "
            f"({', '.join(_classes_in(submodule)) or 'none'})."
        )
    if cls is None:
        classes = sorted(n for n, o in vars(module).items() if inspect.isclass(o) and o.__module__ == module.__name__)
        raise ComponentError(
            f"{where}, but {module_file} has no attribute '{class_name}'. Classes defined there: "
            f"{', '.join(classes) or 'none'}. Fix the class name in the config."
        )
    if not (inspect.isclass(cls) and issubclass(cls, base)):
        found = (
            f"a class with bases {', '.join(b.__module__ + '.' + b.__qualname__ for b in cls.__mro__[1:-1]) or 'object'}"
            if inspect.isclass(cls)
            else f"a {type(cls).__name__}, not a class"
        )
        raise ComponentError(
            f"{where}, but {class_name} in {module_file} is {found}. It must subclass "
            f"aimed.{base.__name__}: declare it as 'class {class_name}({base.__name__})' with "
            f"'from aimed import {base.__name__}'."
        )
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise ComponentError(
            f"{where}, but {class_name} in {module_file} does not implement the abstract method(s) {missing} "
            f"of {base.__name__}. Define them in the class."
        )
    return cls


def check_components(config: Any, project_dir: pathlib.Path) -> None:
    """Resolve every component class of a run, raising the first :class:`ComponentError`."""
    for key in COMPONENT_KEYS:
        load_class(config, key, project_dir)


def _user_frames(exc: BaseException) -> list:
    """``(frame, line)`` of the traceback frames of ``exc`` in code under a loaded ``src_code_path``."""
    import traceback

    sources = tuple(_loaded_source_dirs)
    frames = []
    for frame, line in traceback.walk_tb(exc.__traceback__):
        path = pathlib.Path(frame.f_code.co_filename)
        if path.is_absolute() and any(path.resolve().is_relative_to(src) for src in sources):
            frames.append((frame, line))
    return frames


def user_code_at_fault(exc: BaseException) -> Optional[str]:
    """Which of the user's components and methods an exception came from, and the line, or ``None``.

    The first frame in the user's code is the method aimed called (``PreprocessorTF.batchify``);
    the last is where the error was raised, when that is deeper (a helper function).
    """
    seen = set()
    while exc is not None and id(exc) not in seen:  # the user's error may be the cause of a wrapping one
        seen.add(id(exc))
        frames = _user_frames(exc)
        if frames:
            break
        exc = exc.__cause__ or exc.__context__
    else:
        return None
    (entry, entry_line), (inner, inner_line) = frames[0], frames[-1]
    owner = entry.f_locals.get("self")
    kind = next((base.__name__.removesuffix("Base") for base in COMPONENT_KEYS.values()
                 if isinstance(owner, base)), None)
    text = f"{entry.f_code.co_qualname} ({'the ' + kind + ', ' if kind else ''}{entry.f_code.co_filename}, line {entry_line})"
    if inner is not entry:
        text += f", in {inner.f_code.co_qualname} at {inner.f_code.co_filename}, line {inner_line}"
    return text
