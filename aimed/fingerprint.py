"""Content hashes that ignore what does not change behaviour.

Config sections are hashed as canonical JSON (key order does not matter). Python modules are
hashed by their normalised AST, so comments, docstrings and whitespace do not matter; the
modules a component imports from inside ``src_code_path`` are followed and hashed too.
"""

from __future__ import annotations

import ast
import hashlib
import json
import pathlib
from typing import Any, Dict, Iterable


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


def module_hash(path: pathlib.Path) -> str:
    """Hash of a module's AST without docstrings, comments or layout."""
    tree = _strip_docstrings(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return sha256_text(ast.dump(tree, annotate_fields=False, include_attributes=False))


def _imported_names(tree: ast.AST) -> Iterable[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            for alias in node.names:
                yield f"{node.module}.{alias.name}"


def _module_file(src: pathlib.Path, name: str):
    rel = pathlib.Path(*name.split("."))
    for candidate in (src / rel.with_suffix(".py"), src / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_closure_hashes(src: pathlib.Path, module_names: Iterable[str]) -> Dict[str, str]:
    """``{relative path: AST hash}`` of the named modules and every module of ``src`` they import."""
    hashes: Dict[str, str] = {}
    pending = list(module_names)
    while pending:
        path = _module_file(src, pending.pop())
        if path is None:
            continue
        key = path.relative_to(src).as_posix()
        if key in hashes:
            continue
        hashes[key] = module_hash(path)
        pending.extend(_imported_names(ast.parse(path.read_text(encoding="utf-8"))))
    return dict(sorted(hashes.items()))
