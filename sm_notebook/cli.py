"""The `sm-notebook` command: `show` (as saved_model_cli prints it) and `diagnose`.

Each subcommand is one entry of SUBCOMMANDS: a function adding its arguments
and a function running it (returning the exit status). Imports stay inside the
handlers so that `sm-notebook show` loads protobuf and nothing heavier.
Package errors (SavedModelError) print as one `sm-notebook: error: ...`
message on stderr, exit status 1, no traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, NamedTuple

PROG = "sm-notebook"


def _write(text: str) -> None:
    sys.stdout.write(text)


def parse_tag_set(text: str) -> list:
    """saved_model_cli's --tag_set: comma-separated tags; blanks dropped, '' is the empty set."""
    return [tag.strip() for tag in text.split(",") if tag.strip()]


# -- show -------------------------------------------------------------------

def add_show_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", required=True, help="Directory containing the SavedModel.")
    parser.add_argument("--all", action="store_true",
                        help="Show all available information in the SavedModel.")
    parser.add_argument("--tag_set", help="Comma-separated tags of one MetaGraphDef, e.g. serve,gpu.")
    parser.add_argument("--signature_def",
                        help="A SignatureDef key: show its inputs and outputs (needs --tag_set).")
    parser.add_argument("--list_ops", action="store_true",
                        help="Show the ops used by the MetaGraphDef of --tag_set.")


def run_show(args) -> int:
    from . import showtext
    from .format.savedmodel import read_saved_model

    saved_model = read_saved_model(args.dir)
    if args.all:
        _write(showtext.show_all_text(saved_model))
        return 0
    if args.tag_set is None:
        if args.list_ops:
            _write(showtext.LIST_OPS_NEEDS_TAG_SET)
        _write(showtext.tag_sets_text(saved_model))
        return 0
    from .tags import select_meta_graph

    _, meta_graph = select_meta_graph(saved_model, parse_tag_set(args.tag_set), args.dir)
    if args.list_ops:
        _write(showtext.ops_text(meta_graph))
    if args.signature_def is None:
        _write(showtext.signature_keys_text(meta_graph))
    else:
        _write(showtext.signature_text(meta_graph, args.signature_def))
    return 0


# -- diagnose ---------------------------------------------------------------

def add_diagnose_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", required=True, help="Directory containing the SavedModel.")


def run_diagnose(args) -> int:
    from . import inspect

    report = inspect(args.dir).diagnose()
    _write(f"{report}\n")
    return 1 if any(p.severity == "error" for p in report.problems) else 0


# -- the subcommand table ---------------------------------------------------

class Subcommand(NamedTuple):
    """One `sm-notebook <name>`: its help line, argument adder and handler."""
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str = ""


SHOW_EXAMPLES = """\
Prints exactly what `saved_model_cli show` prints, without TensorFlow.
  sm-notebook show --dir /tmp/saved_model                   (tag-sets)
  sm-notebook show --dir /tmp/saved_model --tag_set serve   (SignatureDef keys)
  sm-notebook show --dir /tmp/saved_model --tag_set serve --signature_def serving_default
  sm-notebook show --dir /tmp/saved_model --tag_set serve --list_ops
  sm-notebook show --dir /tmp/saved_model --all"""

SUBCOMMANDS = [
    Subcommand("show", "show tag-sets, signatures, ops and functions (as saved_model_cli)",
               add_show_arguments, run_show, SHOW_EXAMPLES),
    Subcommand("diagnose", "report problems that stop a SavedModel loading or serving",
               add_diagnose_arguments, run_diagnose,
               "Exit status 1 when the report has errors, 0 otherwise."),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Inspect, diagnose and run TensorFlow SavedModels without TensorFlow.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    subparsers.required = True
    for command in SUBCOMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.description,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        command.add_arguments(sub)
        sub.set_defaults(handler=command.run)
    return parser


def _version() -> str:
    from . import __version__
    return __version__


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def _error(exc) -> int:
    message = str(exc)
    suggestions = getattr(exc, "suggestions", None)
    if suggestions and getattr(exc, "requested", None) is not None:
        message += f"\nOn the command line: --tag_set {','.join(sorted(suggestions[0]))}"
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


def main(argv=None) -> int:
    """Entry point of `sm-notebook`; returns the exit status."""
    import warnings

    from .errors import SavedModelError

    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            status = args.handler(args)
            sys.stdout.flush()
            return status
        except SavedModelError as exc:
            return _error(exc)
        except BrokenPipeError:  # e.g. `sm-notebook show ... | head`
            import os
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    sys.exit(main())
