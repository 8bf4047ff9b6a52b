"""Run configs: YAML in, defaults merged, validated against the schema, attribute access out."""

from __future__ import annotations

import copy
import functools
import pathlib
import warnings
from typing import Any, Iterator, Mapping, Optional, Union

import yaml

from aimed.errors import ConfigError

_SCHEMA_PATH = pathlib.Path(__file__).parent / "schemas" / "run.schema.yaml"


class ConfigStruct(Mapping):
    """A read-only nested mapping with attribute access: ``config.export.metric``.

    Args:
        data: the mapping to wrap; nested mappings become ``ConfigStruct`` on access.
        source: the file the values came from, named in error messages.
    """

    def __init__(self, data: Optional[Mapping] = None, source: Optional[str] = None) -> None:
        object.__setattr__(self, "_data", dict(data or {}))
        object.__setattr__(self, "_source", source)

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, Mapping) and not isinstance(value, ConfigStruct):
            return ConfigStruct(value, self._source)
        return value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self._wrap(self._data[name])
        except KeyError:
            where = f" in {self._source}" if self._source else ""
            raise AttributeError(f"config has no key '{name}'{where}; keys: {sorted(self._data)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("ConfigStruct is read-only; edit the YAML file instead")

    def __getitem__(self, key: str) -> Any:
        return self._wrap(self._data[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"ConfigStruct({self._data!r})"

    def to_dict(self) -> dict:
        """Return a deep copy as plain dicts and lists."""
        return copy.deepcopy(self._data)

    @property
    def source(self) -> Optional[str]:
        """The file this config was loaded from, if any."""
        return self._source


@functools.lru_cache(maxsize=1)
def run_schema() -> dict:
    """The JSON schema of a run config (``aimed/schemas/run.schema.yaml``)."""
    return yaml.safe_load(_SCHEMA_PATH.read_text())


def _schema_defaults(schema: Mapping) -> dict:
    defaults = {}
    for key, prop in schema.get("properties", {}).items():
        if "default" in prop:
            defaults[key] = copy.deepcopy(prop["default"])
        if prop.get("type") == "object" and "properties" in prop:
            nested = _schema_defaults(prop)
            if nested:
                base = defaults.get(key) or {}
                defaults[key] = {**nested, **base}
    return defaults


def deep_merge(defaults: Mapping, values: Mapping) -> dict:
    merged = dict(defaults)
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _format_path(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _describe_error(error, schema: Mapping) -> str:
    key = _format_path(error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1]
        full = f"{key}.{missing}" if error.absolute_path else missing
        prop = schema.get("properties", {}).get(missing, {})
        hint = prop.get("description", "")
        return f"required key '{full}' is missing ({hint})"
    if error.validator == "enum":
        return f"key '{key}' is {error.instance!r}; it must be one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"key '{key}' is {error.instance!r} ({type(error.instance).__name__}); it must be of type {expected}"
    if error.validator == "minimum":
        return f"key '{key}' is {error.instance!r}; it must be >= {error.validator_value}"
    if error.validator == "pattern":
        return f"key '{key}' is {error.instance!r}; it must be a class path of the form module.ClassName"
    if error.validator == "additionalProperties":
        return f"section '{key}': {error.message}"
    return f"key '{key}': {error.message}"


def validate_run_config(data: Mapping, source: str) -> None:
    """Raise :class:`ConfigError` listing every schema violation of a run config."""
    import jsonschema

    schema = run_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        problems = "; ".join(_describe_error(e, schema) for e in errors)
        raise ConfigError(
            f"{source}: the run config is invalid: {problems}. "
            f"Fix these keys in {source}; the schema with a description and default of every key is "
            f"{_SCHEMA_PATH}."
        )
    unknown = sorted(set(data) - set(schema["properties"]))
    if unknown:
        warnings.warn(
            f"{source}: unknown top-level key(s) {', '.join(unknown)} are not used by aimed; "
            f"check for typos (known keys: {', '.join(sorted(schema['properties']))}).",
            UserWarning,
            stacklevel=3,
        )


def read_yaml_mapping(path: Union[str, pathlib.Path], what: str) -> dict:
    """Read a YAML file that must hold a mapping, with a clear error otherwise."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} '{path}' does not exist. Create it, or pass the right path or run name.")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if isinstance(exc, yaml.constructor.ConstructorError):
            raise ConfigError(
                f"{path}: unsupported YAML tag{where}: {problem}. aimed reads YAML with yaml.safe_load, which "
                f"never builds Python objects; replace the tagged value in this {what} with a plain string, "
                f"number, list or mapping."
            ) from None
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}. Fix the syntax of this {what}.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file. A {what} must be YAML.") from None
    if data is None:
        raise ConfigError(f"{path}: the {what} is empty. Write the keys it needs (see the README's config reference).")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the {what} must be a YAML mapping of keys to values, but it holds a {type(data).__name__}."
        )
    return data


def load_workflow_config(project_dir: Union[str, pathlib.Path]) -> dict:
    """``config/config.yaml`` of a project, validated against the installed workflow's schema, defaults merged."""
    import jsonschema

    from aimed.workflow_files import workflow_config_schema

    project = pathlib.Path(project_dir)
    path = project / "config" / "config.yaml"
    data = read_yaml_mapping(path, "workflow config")
    schema = yaml.safe_load(workflow_config_schema().read_text())
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(data))
    if errors:
        problems = "; ".join(_describe_error(e, schema) for e in errors)
        raise ConfigError(f"{path}: the workflow config is invalid: {problems}. Fix these keys in {path}.")
    return deep_merge(_schema_defaults(schema), data)


def load_config(path: Union[str, pathlib.Path]) -> ConfigStruct:
    """Load a run config: ``yaml.safe_load``, merge the schema defaults, validate.

    A section written partially keeps the defaults of the keys it leaves out. Unknown top-level
    keys give a ``UserWarning``.

    Args:
        path: the run's ``config.yaml``.

    Returns:
        The merged, validated config.

    Raises:
        ConfigError: the file is missing, empty, not YAML, or violates the schema.
    """
    data = read_yaml_mapping(path, "run config")
    validate_run_config(data, str(path))
    merged = deep_merge(_schema_defaults(run_schema()), data)
    return ConfigStruct(merged, source=str(path))
