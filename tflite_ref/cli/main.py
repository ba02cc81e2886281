"""``tflite-ref`` entry point: parses arguments, runs one subcommand, renders errors as one line.

Exit codes: 0 success; 1 a check that ran and failed; 2 a bad model, an unsupported feature or a
bad request (one line on stderr, no traceback unless ``--debug``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from typing import NoReturn, Sequence

from rich.console import Console
from rich.markup import escape

from tflite_ref import budgets
from tflite_ref.errors import TFLiteRefError, UsageError

# name -> module under tflite_ref.cli; each exposes HELP, add_arguments(parser), run(args) -> int
SUBCOMMANDS = {
    "inspect": "tflite_ref.cli.inspect_cmd",
    "run": "tflite_ref.cli.run_cmd",
    "micro": "tflite_ref.cli.micro_cmd",
    "qdebug": "tflite_ref.cli.qdebug_cmd",
    "check": "tflite_ref.cli.check_cmd",
    "trace": "tflite_ref.cli.trace_cmd",
    "explain": "tflite_ref.cli.explain_cmd",
    "graph": "tflite_ref.cli.graph_cmd",
    "report": "tflite_ref.cli.report_cmd",
}

error_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    error_console.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    raise SystemExit(code)


def build_parser() -> argparse.ArgumentParser:
    from tflite_ref import __version__

    parser = argparse.ArgumentParser(
        prog="tflite-ref",
        description="Inspect TensorFlow Lite models and run them with bit-exact NumPy reference "
                    "kernels (LiteRT's reference kernels, or TFLite Micro's).",
    )
    parser.add_argument("--version", action="version", version=f"tflite-ref {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__)
        p.add_argument("--debug", action="store_true", help="show the full traceback on errors")
        module.add_arguments(p)
        budgets.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if not args.debug:
        # A NumPy warning from a hostile model's arithmetic would be a second line of output;
        # the error that follows it says what went wrong. --debug shows everything.
        warnings.simplefilter("ignore", RuntimeWarning)
    try:
        with budgets.use(budgets.from_args(args)):
            return int(args._module.run(args) or 0)
    except TFLiteRefError as exc:
        if args.debug:
            raise
        # A problem with the model names the file first; a bad request speaks for itself.
        where = None if isinstance(exc, UsageError) else getattr(args, "model", None)
        prefix = f"{where}: " if where and str(where) not in str(exc) else ""
        fail(f"{prefix}{exc}")
    except KeyboardInterrupt:
        error_console.print("interrupted")
        return 130
    except BrokenPipeError:
        return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
