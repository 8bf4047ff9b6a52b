"""The ``aimed`` command: one subcommand per stage, each parsing its arguments and calling it.

Exit codes: 0 ok, 1 the stage ran and failed, 2 bad usage or config, 128 + N training stopped by
signal N after committing (143 for SIGTERM, 130 for SIGINT). Errors print one
paragraph and no traceback unless ``--debug`` is given. Stage modules (and TensorFlow) are
imported only when their subcommand runs, so ``aimed --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from typing import Callable, List, Optional

from aimed.errors import AimedError, Preempted
from aimed.pipeline import EVAL_SPLITS, STAGES

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _stage(module: str) -> Callable:
    return importlib.import_module(module).run


def _context(args: argparse.Namespace):
    from aimed.run import resolve_run

    return resolve_run(args.run, args.project_dir)


def _tf_context(args: argparse.Namespace):
    """The run's context, then TensorFlow, then every check of the run that needs the user's code.

    A config error is reported before TensorFlow's start-up, and a bad class path or evaluation
    key before the stage writes anything.
    """
    from aimed._tensorflow import import_tensorflow
    from aimed.preflight import check_run

    ctx = _context(args)
    import_tensorflow()
    check_run(ctx)
    return ctx


def _train_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from-previous", action="store_true",
                        help="continue from the commit before the newest one (when the newest is damaged)")


def _evaluate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", required=True, choices=list(EVAL_SPLITS), help="split to evaluate")
    parser.add_argument("--no-gate", action="store_true",
                        help="report a failed evaluation.thresholds gate without failing (or set AIMED_NO_GATE=1)")


#: The CLI side of each stage of :data:`aimed.pipeline.STAGES` (name, module, help text come from
#: there): its extra options, the keyword arguments its ``run`` gets from them, and whether it
#: checks the run (and imports TensorFlow) before the stage starts.
_STAGE_CLI = {
    "validate-data": (None, lambda args: {}, True),
    "check-preprocessing": (None, lambda args: {}, True),
    # train imports TensorFlow itself, once it holds the run's lock
    "train": (_train_options, lambda args: {"from_previous": args.from_previous}, False),
    "export": (None, lambda args: {}, True),
    "evaluate": (_evaluate_options, lambda args: {"split": args.split, "gate": not args.no_gate}, True),
}


def _run_stage(args: argparse.Namespace) -> None:
    """Run the pipeline stage named by the subcommand."""
    _, kwargs, checked = _STAGE_CLI[args.command]
    ctx = _tf_context(args) if checked else _context(args)
    _stage(STAGES[args.command].module)(ctx, **kwargs(args))


def _sync_mlflow(args):
    ctx = _context(args)
    _stage("aimed.stages.sync_mlflow")(ctx)


def _fingerprint(args):
    from aimed.provenance import write_fingerprint_files
    from aimed.run import resolve_run

    for run in args.run:
        ctx = resolve_run(run, args.project_dir)
        for path in write_fingerprint_files(ctx.config, ctx.project_dir, ctx.name):
            print(f"updated {path.relative_to(ctx.project_dir)}")


def _why(args):
    from aimed.errors import ConfigError
    from aimed.provenance import why

    if (args.stage == "evaluate") != bool(args.split):
        raise ConfigError("give --split validation|test with the evaluate stage, and only with it")
    ctx = _context(args)
    folder = ctx.stage_dir(args.stage) / args.split if args.split else ctx.stage_dir(args.stage)
    reasons = why(ctx.config, ctx.project_dir, args.stage, folder, args.split)
    label = f"{args.stage} --split {args.split}" if args.split else args.stage
    if not reasons:
        print(f"{ctx.name} {label}: up to date (fingerprint unchanged)")
    for reason in reasons:
        print(f"{ctx.name} {label}: {reason}")


def _dvc_yaml(args):
    import pathlib

    from aimed.config import load_workflow_config
    from aimed.errors import StageFailed
    from aimed.runners import dvc

    project = pathlib.Path(args.project_dir).resolve()
    workflow_config = load_workflow_config(project)
    target = project / "dvc.yaml"
    if args.check:
        if not dvc.dvc_yaml_current(workflow_config, project):
            raise StageFailed(f"{target} differs from the pipeline graph and config/config.yaml; run `aimed dvc-yaml`.")
        return
    if dvc.write_dvc_yaml(workflow_config, project):
        print(f"wrote {target}")


def _migrate(args):
    import pathlib

    from aimed.errors import ConfigError, StageFailed
    from aimed.migrate import plan

    root = pathlib.Path(args.path).resolve()
    if not root.is_dir():
        raise ConfigError(f"'{args.path}' is not a folder. Give the folder of the project to migrate.")
    migration = plan(root)
    if args.check:
        print(migration.diff(), end="")
    else:
        migration.apply()
    verb = "would rewrite" if args.check else "rewrote"
    print(f"{verb} {migration.changed_lines} import line(s) in {len(migration.files)} file(s) of {root}")
    if migration.findings:
        print(f"{len(migration.findings)} thing(s) to look at (not changed):")
        for finding in migration.findings:
            print(f"  {finding}")
    if args.check and migration.files:
        raise StageFailed(f"{len(migration.files)} file(s) still import abstractions; run `aimed migrate {args.path}`.")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"aimed: error: {message}. Run '{self.prog} --help' for the arguments.\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``aimed`` command."""
    parser = _Parser(prog="aimed", description="Reproducible training pipeline for TensorFlow/Keras models.")
    parser.add_argument("--debug", action="store_true", help="print tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="<stage>", parser_class=_Parser)

    def add(name: str, func: Callable, help_text: str, several_runs: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("run", nargs="+" if several_runs else None,
                       help="run name (runs/<run>/config.yaml) or path of a run config.yaml"
                       + (", one or more" if several_runs else ""))
        p.add_argument("--project-dir", default=".", help="project folder; relative config paths resolve here (default: .)")
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="print tracebacks")
        p.set_defaults(func=func)
        return p

    for name, stage in STAGES.items():
        options = _STAGE_CLI[name][0]
        stage_parser = add(name, _run_stage, stage.help)
        if options:
            options(stage_parser)
    add("sync-mlflow", _sync_mlflow, "Upload metrics and artifacts logged while MLflow was unreachable.")
    add("fingerprint", _fingerprint, "Write each stage's fingerprint to results/<run>/fingerprints/ (used by dvc.yaml).",
        several_runs=True)
    why_parser = add("why", _why, "Explain which parts of a stage's fingerprint changed since it last ran.")
    why_parser.add_argument("stage", choices=list(STAGES), help="the stage to explain")
    why_parser.add_argument("--split", choices=list(EVAL_SPLITS), help="the split, for evaluate")
    dvc_parser = sub.add_parser("dvc-yaml", help="Write dvc.yaml from the pipeline graph and config/config.yaml.",
                                description="Write dvc.yaml from the pipeline graph and config/config.yaml.")
    dvc_parser.add_argument("--project-dir", default=".", help="project folder (default: .)")
    dvc_parser.add_argument("--check", action="store_true", help="exit 1 if dvc.yaml is out of date instead of writing it")
    dvc_parser.set_defaults(func=_dvc_yaml)
    migrate_help = "Rewrite a project's abstractions imports to aimed and list what else needs a look."
    migrate_parser = sub.add_parser("migrate", help=migrate_help, description=migrate_help)
    migrate_parser.add_argument("path", help="the project folder (its src/ and runs/)")
    migrate_parser.add_argument("--check", action="store_true",
                                help="print the diff and the findings, change nothing (exit 1 if imports would change)")
    migrate_parser.set_defaults(func=_migrate)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the ``aimed`` command and return its exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        args.func(args)
    except AimedError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"aimed {args.command}: error: {exc}", file=sys.stderr)
        if isinstance(exc, Preempted):
            # The state is committed, the lock released and MLflow told; leave without tearing down
            # TensorFlow. Destroying a tf.data iterator stopped mid-epoch can block for ever: a Python
            # generator inside tf.data (from_generator) waits for the GIL that the destructor holds.
            sys.stdout.flush()
            sys.stderr.flush()
            logging.shutdown()
            os._exit(exc.exit_code)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"aimed {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # anything else is a bug in user code or in aimed: say which stage, and whose code
        if args.debug:
            traceback.print_exc()
        from aimed.loading import user_code_at_fault

        where = user_code_at_fault(exc)
        print(
            f"aimed {args.command}: error: "
            + (f"{where} raised {type(exc).__name__}: {exc}. Fix it there; "
               if where else f"the stage failed with {type(exc).__name__}: {exc}. ")
            + ("the traceback is above." if args.debug else "Rerun with --debug for the traceback."),
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
