"""Error types that the CLI maps to exit codes and one-paragraph messages."""


class AimedError(Exception):
    """Base of every error aimed reports to a user without a traceback."""

    exit_code = 1


class ConfigError(AimedError):
    """The run config, the workflow config or a CLI argument is wrong (exit 2)."""

    exit_code = 2


class ComponentError(ConfigError):
    """A component class path in the config cannot be resolved to a valid class (exit 2)."""


class StageFailed(AimedError):
    """A stage ran but its checks failed: invalid data, a failed gate, a NaN loss (exit 1)."""

    exit_code = 1
