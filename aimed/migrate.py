"""``aimed migrate PATH``: move a project written for ``abstractions`` onto aimed.

It rewrites the import lines (``abstractions`` becomes ``aimed``, in every import form) and
lists, without changing them, what else it found that behaves differently or needs a look:
the DataLoader constructor form, ``get_eval_funcs`` returning a list, run-config keys aimed
does not use, and numpy 2 and Keras 3 pitfalls. ``--check`` prints the diff and changes nothing.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import pathlib
import re
from typing import Iterator, List, Tuple

import yaml

OLD, NEW = "abstractions", "aimed"
SKIPPED_FOLDERS = {".git", ".venv", "venv", "__pycache__", ".snakemake", "site-packages", "results", "state"}

#: numpy names removed in numpy 2.0 (and what to write instead).
NUMPY_REMOVED = {
    "float": "float", "int": "int", "bool": "bool", "object": "object", "str": "str", "complex": "complex",
    "asscalar": "a.item()", "product": "np.prod", "cumproduct": "np.cumprod", "alltrue": "np.all",
    "sometrue": "np.any", "NaN": "np.nan", "Inf": "np.inf", "infty": "np.inf", "float_": "np.float64",
    "unicode_": "np.str_", "string_": "np.bytes_", "round_": "np.round",
}
#: Keras 2 / tf.keras idioms that Keras 3 removed or changed, as (pattern, advice).
KERAS_PITFALLS = (
    (r"\.fit_generator\(|\.predict_generator\(|\.evaluate_generator\(",
     "Keras 3 removed fit_generator/predict_generator/evaluate_generator; aimed calls fit itself"),
    (r"\b(?:Adam|SGD|RMSprop|Adagrad|Nadam|Adamax)\([^)]*\blr\s*=", "Keras 3 optimizers take learning_rate=, not lr="),
    (r"keras\.engine\b|keras\.layers\.core\b|keras\.layers\.merge\b",
     "Keras 3 has no keras.engine or keras.layers.core/merge modules"),
    (r"set_session\(|get_session\(|tf\.compat\.v1\.Session", "TensorFlow 2 / Keras 3 have no sessions"),
    (r"\.save\([^)]*\.h5['\"]", "Keras 3 saves .keras files; .h5 is legacy (aimed exports .keras and a SavedModel)"),
    (r"\binput_shape\s*=", "Keras 3 warns on input_shape= in layers; start the model with keras.Input(shape=...)"),
)


@dataclasses.dataclass(frozen=True)
class Finding:
    """Something the migration noticed but did not change."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def python_files(root: pathlib.Path) -> Iterator[pathlib.Path]:
    for path in sorted(root.rglob("*.py")):
        if not SKIPPED_FOLDERS.intersection(path.relative_to(root).parts[:-1]):
            yield path


def _import_lines(tree: ast.AST) -> set:
    """Line numbers of the import statements that name ``abstractions``."""
    lines = set()
    for node in ast.walk(tree):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
        if any(name == OLD or name.startswith(OLD + ".") for name in names):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


_IMPORT_AS_ALIAS = re.compile(rf"^(\s*)import {OLD}(\s*(?:#.*)?)$")
_NAME = re.compile(rf"\b{OLD}\b")


def rewrite_source(text: str) -> Tuple[str, int]:
    """``text`` with its import lines moved to aimed, and how many lines changed.

    ``import abstractions`` becomes ``import aimed as abstractions`` so that the module's
    ``abstractions.X`` references keep working; every other form just renames the package.
    """
    tree = ast.parse(text)
    targets = _import_lines(tree)
    lines = text.splitlines(keepends=True)
    changed = 0
    for number in sorted(targets):
        line = lines[number - 1]
        body, ending = line.rstrip("\r\n"), line[len(line.rstrip("\r\n")):]
        alone = _IMPORT_AS_ALIAS.match(body)
        new = f"{alone.group(1)}import {NEW} as {OLD}{alone.group(2)}" if alone else _NAME.sub(NEW, body)
        if new != body:
            lines[number - 1] = new + ending
            changed += 1
    return "".join(lines), changed


def _base_names(node: ast.ClassDef) -> List[str]:
    return [b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else "" for b in node.bases]


def code_findings(path: pathlib.Path, shown: str, text: str) -> List[Finding]:
    """What aimed runs differently from abstractions in one module, or what numpy 2 and Keras 3 break."""
    tree = ast.parse(text)
    found: List[Finding] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and "DataLoaderBase" in _base_names(node):
            init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
            if init is not None:
                params = [a.arg for a in init.args.args[1:]]
                form = ("the v0.2 constructor DataLoader(config): aimed builds it so, and config.data_dir is the "
                        "absolute dataset folder" if len(params) == 1 else
                        "the 0.1.x constructor DataLoader(config, data_dir): aimed builds it so")
                found.append(Finding(shown, init.lineno, f"{node.name}.__init__({', '.join(params)}): {form}"))
        if isinstance(node, ast.FunctionDef) and node.name == "get_eval_funcs":
            if any(isinstance(r.value, (ast.List, ast.Tuple, ast.ListComp)) for r in ast.walk(node)
                   if isinstance(r, ast.Return) and r.value is not None):
                found.append(Finding(shown, node.lineno, "get_eval_funcs returns a list: aimed names each report "
                                     "column by the function's __name__ (get_func().__name__ for EvalFunc objects)"))
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("np", "numpy")
                and node.attr in NUMPY_REMOVED):
            found.append(Finding(shown, node.lineno, f"numpy 2 removed np.{node.attr}: use {NUMPY_REMOVED[node.attr]}"))
    for number, line in enumerate(text.splitlines(), 1):
        for pattern, advice in KERAS_PITFALLS:
            if re.search(pattern, line):
                found.append(Finding(shown, number, advice))
    return found


def config_findings(root: pathlib.Path) -> List[Finding]:
    """Run-config keys aimed does not use, and the keys it adds, per ``runs/*/config.yaml``."""
    from aimed.config import run_schema

    known = set(run_schema()["properties"])
    found = []
    for path in sorted(root.glob("runs/*/config.yaml")):
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            found.append(Finding(str(path.relative_to(root)), 1, f"not valid YAML: {exc}"))
            continue
        shown = str(path.relative_to(root))
        for key in sorted(set(data) - known):
            found.append(Finding(shown, 1, f"key '{key}' is not used by aimed (it warns); remove it or move it into "
                                 f"a component's section"))
        if "data_dir" not in data:
            found.append(Finding(shown, 1, "no 'data_dir': aimed reads the dataset from datasets/mnist; set data_dir "
                                 "to the dataset folder, relative to the project"))
    return found


@dataclasses.dataclass
class Migration:
    """What ``aimed migrate`` changes (``files``: path -> (old text, new text)) and finds."""

    root: pathlib.Path
    files: dict
    changed_lines: int
    findings: List[Finding]

    def diff(self) -> str:
        return "".join(
            "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                         f"a/{path}", f"b/{path}"))
            for path, (old, new) in sorted(self.files.items()))

    def apply(self) -> None:
        from aimed._io import atomic_write_text

        for path, (_, new) in self.files.items():
            atomic_write_text(self.root / path, new)


def plan(root: pathlib.Path) -> Migration:
    """Read a project and work out its migration, writing nothing."""
    files, changed, findings = {}, 0, []
    for path in python_files(root):
        shown = str(path.relative_to(root))
        text = path.read_text(encoding="utf-8")
        try:
            new, count = rewrite_source(text)
        except SyntaxError as exc:
            findings.append(Finding(shown, exc.lineno or 1, f"not parsed ({exc.msg}); migrate it by hand"))
            continue
        if count:
            files[shown] = (text, new)
            changed += count
        findings += code_findings(path, shown, text)
    findings += config_findings(root)
    return Migration(root, files, changed, findings)
