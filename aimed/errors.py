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


class Preempted(AimedError):
    """SIGTERM or SIGINT stopped training after committing its state (exit 128 + the signal number).

    128 + N is what a shell reports for a process ended by signal N, so a scheduler that requeues
    on SIGTERM (SLURM's ``RequeueExit=143``) or a wrapper script sees the usual status.
    """

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum
