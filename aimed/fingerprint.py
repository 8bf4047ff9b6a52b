"""Content hashes that ignore what does not change behaviour.

Config sections are hashed as canonical JSON (key order does not matter). Python modules are
hashed by their normalised AST, so comments, docstrings and whitespace do not matter; the
modules a component imports from inside ``src_code_path`` are followed and hashed too.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pathlib
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def hash_value(obj: Any) -> str:
    return sha256_text(canonical_json(obj))


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


_parsed: Dict[tuple, tuple] = {}

#: An import as written: ``(level, module, names)``. ``level`` counts the leading dots of a
#: relative import (0 for absolute), ``module`` is the dotted name after them (may be empty, as in
#: ``from . import x``), ``names`` what a ``from`` import takes from it (empty for ``import m``).
ImportRecord = Tuple[int, str, Tuple[str, ...]]

_IMPORT_FUNCTIONS = {"import_module", "__import__"}


def _parse(path: pathlib.Path) -> tuple:
    """``(AST hash, import records)`` of a module, remembered while the file is unchanged."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _parsed:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        records = tuple(_import_records(tree))
        digest = sha256_text(ast.dump(_strip_docstrings(tree), annotate_fields=False, include_attributes=False))
        _parsed[key] = (digest, records)
    return _parsed[key]


def module_hash(path: pathlib.Path) -> str:
    """Hash of a module's AST without docstrings, comments or layout."""
    return _parse(path)[0]


def _literal_import(node: ast.Call) -> Optional[ImportRecord]:
    """``importlib.import_module("a.b")``, ``import_module(".b", package)`` or ``__import__("a")``, with a literal name."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name not in _IMPORT_FUNCTIONS or not node.args:
        return None
    target = node.args[0]
    if not (isinstance(target, ast.Constant) and isinstance(target.value, str)):
        return None
    dotted = target.value
    level = len(dotted) - len(dotted.lstrip("."))
    # import_module(".x", package=__package__) is relative to the calling module's package.
    return level, dotted[level:], ()


def _import_records(tree: ast.AST) -> Iterator[ImportRecord]:
    """Every import of a module, in any form: ``import a.b``, ``from a import b``, ``from .. import c``,
    ``from .d import e`` and calls of ``import_module``/``__import__`` with a literal name, at any depth
    (inside functions and ``try`` blocks too)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield 0, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            yield node.level, node.module or "", tuple(alias.name for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call):
            record = _literal_import(node)
            if record is not None:
                yield record


def _module_file(src: pathlib.Path, name: str) -> Optional[pathlib.Path]:
    rel = pathlib.Path(*name.split("."))
    for candidate in (src / rel.with_suffix(".py"), src / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(src: pathlib.Path, path: pathlib.Path) -> Tuple[str, bool]:
    """The dotted name of a module file under ``src``, and whether it is a package's ``__init__``."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def _resolve(record: ImportRecord, importer: str, importer_is_package: bool) -> List[str]:
    """The absolute module names an import may load: the module, its parent packages, and each
    ``from`` name (which may be a submodule rather than an attribute)."""
    level, module, names = record
    if level:
        package = importer.split(".") if importer_is_package else importer.split(".")[:-1]
        if level - 1 > len(package) or (level - 1 == len(package) and not module and not names):
            return []  # beyond the top of src: Python refuses it too
        base = package[:len(package) - (level - 1)]
        module = ".".join(base + ([module] if module else []))
    if not module:
        return list(names)
    parts = module.split(".")
    targets = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return targets + [f"{module}.{name}" for name in names]


def module_closure_hashes(src: pathlib.Path, module_names: Iterable[str], prefix: str = "") -> Dict[str, str]:
    """``{relative path: AST hash}`` of the named modules and every module of ``src`` they reach.

    Imports are followed transitively in every form (see :func:`_import_records`); importing
    ``a.b.c`` also runs ``a/__init__.py`` and ``a/b/__init__.py``, which are included. Only names
    starting with ``prefix`` are followed (``"aimed"`` for aimed's own code, whose folder sits
    beside third-party packages).
    """
    # Most imported names are third-party packages: one listing of src rules them out without a
    # stat per name, which mattered when the Snakefile computes this for every run and stage.
    top_level = {entry.name.removesuffix(".py") for entry in os.scandir(src)} if src.is_dir() else set()
    hashes: Dict[str, str] = {}
    pending: List[str] = []
    for name in module_names:
        parts = name.split(".")
        pending += [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    seen: set = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        in_src = name.startswith(prefix) and name.partition(".")[0] in top_level
        path = _module_file(src, name) if in_src else None
        if path is None:
            continue
        key = path.relative_to(src).as_posix()
        if key in hashes:
            continue
        hashes[key], records = _parse(path)
        importer, is_package = _module_name(src, path)
        for record in records:
            pending.extend(_resolve(record, importer, is_package))
    return dict(sorted(hashes.items()))


def _file_sha256(path: str) -> str:
    # os.open/os.read rather than open(): on 70,000 small images the file object's buffering
    # layer costs more than reading and hashing (about 8 µs against 20 µs per file).
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        while block := os.read(fd, 1 << 20):
            digest.update(block)
    finally:
        os.close(fd)
    return digest.hexdigest()


def _files_under(folder: str, prefix: str = "") -> Iterator[Tuple[str, os.DirEntry]]:
    """``(relative posix path, entry)`` of every file under ``folder``.

    Like ``Path.rglob("*")``, which the manifest used before: symlinked folders are listed but
    not entered, symlinked files count as files. ``os.scandir`` gives file types without a
    ``stat`` per name.
    """
    with os.scandir(folder) as entries:
        for entry in entries:
            relative = prefix + entry.name
            if entry.is_dir():
                if not entry.is_symlink():
                    yield from _files_under(entry.path, relative + "/")
            elif entry.is_file():
                yield relative, entry


class FileHashCache:
    """sha256 of files, remembered by (size, mtime, inode) in a JSON file so unchanged files are not reread.

    DVC checkouts rewrite mtimes; such a file is simply hashed again, to the same value.
    """

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        try:
            self.entries = json.loads(path.read_text())
        except (OSError, ValueError):
            self.entries = {}
        self.dirty = False

    @staticmethod
    def _stamp(stat: os.stat_result) -> List[int]:
        return [stat.st_size, stat.st_mtime_ns, stat.st_ino]

    def lookup(self, path: str, stat: os.stat_result) -> Optional[str]:
        """The remembered sha256 of the file at ``path`` if ``stat`` shows it unchanged since, else ``None``."""
        entry = self.entries.get(path)
        return entry[1] if entry and entry[0] == self._stamp(stat) else None

    def remember(self, path: str, stat: os.stat_result, value: str) -> None:
        """Remember ``value`` as the sha256 of the file at ``path`` as ``stat`` (taken before reading it) saw it."""
        self.entries[path] = [self._stamp(stat), value]
        self.dirty = True

    def save(self) -> None:
        if self.dirty:
            from aimed._io import atomic_write_text

            atomic_write_text(self.path, json.dumps(self.entries))
            self.dirty = False


def folder_manifest(folder: pathlib.Path, cache: FileHashCache) -> Dict[str, Any]:
    """``{"fingerprint", "n_files", "files": {relative path: sha256}}`` of every file under ``folder``."""
    files = {}
    if folder.is_dir():
        # The cache is keyed by paths below the resolved folder: one realpath for the folder, none per
        # file. Sorting part by part is the order of sorted pathlib paths, which earlier manifests used.
        listing = sorted(_files_under(os.path.realpath(folder)), key=lambda item: item[0].split("/"))
        for relative, entry in listing:
            stat = entry.stat()
            value = cache.lookup(entry.path, stat)
            if value is None:
                value = _file_sha256(entry.path)
                cache.remember(entry.path, stat, value)
            files[relative] = value
    cache.save()
    overall = sha256_text("".join(f"{k}\0{v}\n" for k, v in files.items()))
    return {"fingerprint": overall, "n_files": len(files), "files": files}


def hash_cache(project_dir: pathlib.Path) -> FileHashCache:
    """The project's file hash cache (``.aimed-cache/file-hashes.json``, not versioned)."""
    return FileHashCache(project_dir / ".aimed-cache" / "file-hashes.json")
