"""Stage fingerprints: what a stage's outputs were made from, and why a stage must rerun.

A stage's fingerprint hashes its parts: the config keys it reads, the normalised code of the
user modules it runs (with the modules they import from ``src_code_path``), aimed's version and
the code of the aimed modules the stage runs, its upstream stages' fingerprints, and for
validate-data the content of the dataset. Paths, key order, timestamps and the machine do not
enter it.

One computation (:func:`fingerprint_parts`) serves every copy; the stored copies are:

- ``results/<run>/<stage>/fingerprint.json`` (fingerprint and parts), written by the stage when
  it completes. **This copy is authoritative**: an output folder is up to date when its recorded
  fingerprint equals the current one, and ``aimed why`` explains the difference.
- Snakemake's params (in ``.snakemake/``) and DVC's ``results/<run>/fingerprints/<stage>.json``
  (written by ``aimed fingerprint``): what each runner compares to decide what reruns; derived
  from the same computation, never read back by aimed.
- ``state/<run>/train/state.json``: the ``resume`` variant (:data:`VARIANTS`), which leaves out
  ``epochs`` so that raising it continues a training instead of restarting it.
"""

from __future__ import annotations

import functools
import json
import pathlib
from typing import Any, Dict, List, Optional, Tuple

import aimed
from aimed.config import ConfigStruct
from aimed.fingerprint import folder_manifest, hash_cache, hash_value, module_closure_hashes
from aimed.pipeline import STAGES

FINGERPRINT_FILE = "fingerprint.json"
_AIMED_ROOT = pathlib.Path(aimed.__file__).resolve().parent.parent


def _lookup(config: Dict[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _config_part(config: Dict[str, Any], stage: str, split: Optional[str]) -> Dict[str, str]:
    spec = STAGES[stage]
    keys = list(spec.config_keys) + list(spec.split_keys.get(split, ()))
    if "*" in keys:
        keys = [k for k in config if k not in spec.config_exclude] + [k for k in keys if k != "*"]
    return {key: hash_value(_lookup(config, key)) for key in sorted(set(keys))}


@functools.lru_cache(maxsize=None)
def _aimed_code(module: str) -> str:
    return hash_value(module_closure_hashes(_AIMED_ROOT, [module], prefix="aimed"))


def _code_part(config: Dict[str, Any], project_dir: pathlib.Path, stage: str) -> Dict[str, str]:
    modules = [config[k].rpartition(".")[0] for k in STAGES[stage].components if config.get(k)]
    return module_closure_hashes((project_dir / config["src_code_path"]).resolve(), modules)


def _data_part(config: Dict[str, Any], project_dir: pathlib.Path) -> str:
    return folder_manifest((project_dir / config["data_dir"]).resolve(), hash_cache(project_dir))["fingerprint"]


#: Named variants of a stage's fingerprint: the config keys each leaves out.
VARIANTS: Dict[str, Tuple[str, ...]] = {"resume": ("epochs",)}


def variant_parts(config: ConfigStruct, project_dir: pathlib.Path, stage: str, variant: str) -> Dict[str, Any]:
    """The parts of a named variant of a stage's fingerprint (see :data:`VARIANTS`)."""
    parts = fingerprint_parts(config, project_dir, stage)
    parts["config"] = {k: v for k, v in parts["config"].items() if k not in VARIANTS[variant]}
    return parts


def fingerprint_parts(config: ConfigStruct, project_dir: pathlib.Path, stage: str,
                      split: Optional[str] = None, _memo: Optional[Dict[str, str]] = None,
                      data_fingerprint: Optional[str] = None) -> Dict[str, Any]:
    """The parts of a stage's fingerprint for a run config (``split`` for evaluate).

    ``data_fingerprint`` is the dataset manifest's fingerprint when the caller has just computed
    it (validate-data), which saves hashing the dataset a second time.
    """
    raw = config.to_dict()
    spec = STAGES[stage]
    memo = {} if _memo is None else _memo
    parts: Dict[str, Any] = {
        "config": _config_part(raw, stage, split),
        "code": _code_part(raw, project_dir, stage),
        "aimed": {"version": aimed.__version__, "code": _aimed_code(spec.module)},
        "upstream": {up: fingerprint(config, project_dir, up, _memo=memo) for up in spec.upstream},
    }
    if spec.reads_data:
        parts["data"] = _data_part(raw, project_dir) if data_fingerprint is None else data_fingerprint
    return parts


def fingerprint(config: ConfigStruct, project_dir: pathlib.Path, stage: str, split: Optional[str] = None,
                _memo: Optional[Dict[str, str]] = None) -> str:
    """The fingerprint of a stage: one hash over its parts."""
    memo = {} if _memo is None else _memo
    key = f"{stage}/{split}"
    if key not in memo:
        memo[key] = hash_value(fingerprint_parts(config, project_dir, stage, split, memo))
    return memo[key]


def record(config: ConfigStruct, project_dir: pathlib.Path, stage: str, folder: pathlib.Path,
           split: Optional[str] = None, data_fingerprint: Optional[str] = None) -> Dict[str, Any]:
    """Write ``fingerprint.json`` (fingerprint and parts) into a stage's output folder.

    ``data_fingerprint``: see :func:`fingerprint_parts`.
    """
    from aimed._io import atomic_write_json

    parts = fingerprint_parts(config, project_dir, stage, split, data_fingerprint=data_fingerprint)
    entry = {"stage": stage, "split": split, "fingerprint": hash_value(parts), "parts": parts}
    atomic_write_json(folder / FINGERPRINT_FILE, entry)
    return entry


def _diff(old: Any, new: Any, path: str) -> List[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        lines = []
        for key in sorted(set(old) | set(new)):
            where = f"{path}.{key}" if path else key
            if key not in old:
                lines.append(f"{where}: added")
            elif key not in new:
                lines.append(f"{where}: removed")
            else:
                lines += _diff(old[key], new[key], where)
        return lines
    return [] if old == new else [f"{path}: changed"]


def explain(recorded: Optional[Dict[str, Any]], current: Dict[str, Any]) -> List[str]:
    """Human-readable parts whose hash differs between a recorded fingerprint and the current one."""
    if recorded is None:
        return ["no recorded fingerprint: the stage has not run (or its outputs were removed)"]
    return _diff(recorded.get("parts", {}), current, "")


def read_recorded(folder: pathlib.Path) -> Optional[Dict[str, Any]]:
    path = folder / FINGERPRINT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def write_fingerprint_files(config: ConfigStruct, project_dir: pathlib.Path, run: str) -> List[pathlib.Path]:
    """Write ``results/<run>/fingerprints/<stage>.json`` for DVC, touching only files whose value changed."""
    from aimed._io import atomic_write_json
    from aimed.pipeline import fingerprint_file, jobs

    memo: Dict[str, str] = {}
    written = []
    for stage, split in jobs():
        path = project_dir / fingerprint_file(run, stage, split or "")
        entry = {"stage": stage, "split": split,
                 "fingerprint": fingerprint(config, project_dir, stage, split, _memo=memo)}
        try:
            unchanged = json.loads(path.read_text()) == entry
        except (OSError, ValueError):
            unchanged = False
        if not unchanged:
            atomic_write_json(path, entry)
            written.append(path)
    return written


def why(config: ConfigStruct, project_dir: pathlib.Path, stage: str, folder: pathlib.Path,
        split: Optional[str] = None) -> List[str]:
    """What changed in a stage's fingerprint since its outputs in ``folder`` were made; empty if nothing."""
    current = fingerprint_parts(config, project_dir, stage, split)
    recorded = read_recorded(folder)
    if recorded is not None and recorded.get("fingerprint") == hash_value(current):
        return []
    return explain(recorded, current)
