"""The ``aimed`` command: one subcommand per stage, each parsing its arguments and calling it.

Exit codes: 0 ok, 1 the stage ran and failed, 2 bad usage or config. Errors print one
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

from aimed.errors import AimedError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _stage(module: str) -> Callable:
    return importlib.import_module(f"aimed.stages.{module}").run


def _context(args: argparse.Namespace):
    from aimed.run import resolve_run

    return resolve_run(args.run, args.project_dir)


def _validate_data(args):
    ctx = _context(args)
    _stage("validate_data")(ctx)


def _check_preprocessing(args):
    ctx = _context(args)
    _stage("check_preprocessing")(ctx)


def _train(args):
    ctx = _context(args)
    _stage("train")(ctx)


def _export(args):
    ctx = _context(args)
    _stage("export")(ctx)


def _evaluate(args):
    ctx = _context(args)
    _stage("evaluate")(ctx, split=args.split)


def _sync_mlflow(args):
    ctx = _context(args)
    _stage("sync_mlflow")(ctx)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"aimed: error: {message}. Run '{self.prog} --help' for the arguments.\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``aimed`` command."""
    parser = _Parser(prog="aimed", description="Reproducible training pipeline for TensorFlow/Keras models.")
    parser.add_argument("--debug", action="store_true", help="print tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="<stage>", parser_class=_Parser)

    def add(name: str, func: Callable, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("run", help="run name (runs/<run>/config.yaml) or path of a run config.yaml")
        p.add_argument("--project-dir", default=".", help="project folder; relative config paths resolve here (default: .)")
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="print tracebacks")
        p.set_defaults(func=func)
        return p

    add("validate-data", _validate_data, "Read every split through the DataLoader and report bad files and rows.")
    add("check-preprocessing", _check_preprocessing, "Check preprocessed batches against the compiled model.")
    add("train", _train, "Train the model, resuming from the run's checkpoint if there is one.")
    add("export", _export, "Export the best epoch as a SavedModel and a .keras file.")
    evaluate = add("evaluate", _evaluate, "Evaluate a split; write the per-datapoint report and a summary.")
    evaluate.add_argument("--split", required=True, choices=["validation", "test"], help="split to evaluate")
    add("sync-mlflow", _sync_mlflow, "Upload metrics and artifacts logged while MLflow was unreachable.")
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
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"aimed {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # anything else is a bug in user code or in aimed: say which stage
        if args.debug:
            traceback.print_exc()
        print(
            f"aimed {args.command}: error: the stage failed with {type(exc).__name__}: {exc}. "
            f"Rerun with --debug for the traceback.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
