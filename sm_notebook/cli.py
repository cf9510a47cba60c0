"""The `sm-notebook` command: `show` and `run` (as saved_model_cli prints them), `diagnose`,
`scan`, `diff`, `summary`, `demo`.

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
    parser.add_argument("--tag_set", "--tags", dest="tag_set", help="Comma-separated tags of one MetaGraphDef, e.g. serve,gpu.")
    parser.add_argument("--signature_def", "--signature", dest="signature_def",
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


# -- diff and summary -------------------------------------------------------

def add_diff_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", required=True, action="append", dest="dirs",
                        help="A SavedModel directory; give --dir twice: the old one, then the new one.")
    parser.add_argument("--no_values", action="store_true",
                        help="Do not read variable values (shapes and dtypes are still compared).")


def run_diff(args) -> int:
    from . import diff
    from .errors import SavedModelError

    if len(args.dirs) != 2:
        raise SavedModelError(f"diff compares two SavedModels; got {len(args.dirs)} --dir. "
                              "Use: sm-notebook diff --dir OLD --dir NEW.")
    result = diff(*args.dirs, values=not args.no_values)
    _write(f"{result}\n")
    return 0 if result.identical else 1


def add_summary_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", required=True, help="Directory containing the SavedModel.")
    parser.add_argument("--tag_set", "--tags", dest="tag_set",
                        help="Comma-separated tags of the MetaGraphDef (default: the only one).")


def run_summary(args) -> int:
    from . import summary

    tags = None if args.tag_set is None else parse_tag_set(args.tag_set)
    _write(f"{summary(args.dir, tags)}\n")
    return 0


# -- scan -------------------------------------------------------------------

def add_scan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", required=True, help="Directory containing the SavedModel.")
    parser.add_argument("--tag_set", "--tags", dest="tag_set", help="Comma-separated tags of the MetaGraphDef to scan "
                                          "(default: the only one).")


def run_scan(args) -> int:
    from .engine.scan import scan_model

    tags = None if args.tag_set is None else parse_tag_set(args.tag_set)
    report = scan_model(args.dir, tags)
    _write(f"{report}\n")
    return 0 if report.ok else 1


# -- run --------------------------------------------------------------------

def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", required=True, help="Directory containing the SavedModel.")
    parser.add_argument("--tag_set", "--tags", dest="tag_set", required=True, help="Comma-separated tags, e.g. serve,gpu.")
    parser.add_argument("--signature_def", "--signature", dest="signature_def", required=True, help="The SignatureDef key to run.")
    parser.add_argument("--inputs", default="",
                        help="'x=file.npy;y=file.npz[key]': inputs read from numpy files.")
    parser.add_argument("--input_exprs", default="",
                        help="'x=[1,2];y=np.ones((2,3))': inputs as Python literals or a few numpy "
                             "constructors (np.array/zeros/ones/full/arange/linspace/eye/...) with literal "
                             "arguments; parsed, never evaluated.")
    parser.add_argument("--input_examples", default="",
                        help="'x=[{\"f\": [1.0, 2.0], \"k\": [3]}]': inputs as lists of tf.train.Example "
                             "features (float, int, str or bytes lists).")
    parser.add_argument("--outdir", help="Write each output to OUTDIR/<output key>.npy as well.")
    parser.add_argument("--overwrite", action="store_true", help="Overwrite files in --outdir.")
    parser.add_argument("--backend", default="numpy", help="numpy (default) or cupy.")
    parser.add_argument("--allow_io", action="store_true",
                        help="Allow ops that read or write files or run processes (untrusted models!).")


def _load_input_file(key: str, spec: str):
    """x=file.npy, x=file.npz or x=file.npz[name] (never pickles)."""
    from .literals import load_array_file
    return load_array_file(spec, what=f"input {key!r}")


def _parse_examples(key: str, text: str) -> list:
    """--input_examples: a list of {feature: list} dicts -> serialized tf.train.Examples."""
    from .errors import SavedModelError
    from .format.example import serialize_example
    from .literals import parse_value

    examples = parse_value(text, what=f"--input_examples {key}")
    if not isinstance(examples, list) or not all(isinstance(e, dict) for e in examples):
        raise SavedModelError(f"--input_examples {key} must be a list of {{feature: list}} dicts, "
                              f"got {type(examples).__name__}: {text!r}.")
    return [serialize_example(example) for example in examples]


def gather_inputs(args) -> dict:
    """The feeds of `sm-notebook run`: files (--inputs), values (--input_exprs) and
    tf.train.Examples (--input_examples); text is parsed (sm_notebook.literals), never run."""
    from .errors import SavedModelError
    from .literals import parse_value, split_assignments

    inputs = {key: _load_input_file(key, spec) for key, spec in split_assignments(args.inputs, "--inputs")}
    for flag, text, parse in (
            ("--input_exprs", args.input_exprs, lambda k, v: parse_value(v, what=f"--input_exprs {k}")),
            ("--input_examples", args.input_examples, _parse_examples)):
        for key, value in split_assignments(text, flag):
            if key in inputs:
                raise SavedModelError(f"Input {key!r} is given twice (again in {flag}).")
            inputs[key] = parse(key, value)
    return inputs


def run_run(args) -> int:
    import os

    import numpy as np

    from . import Ragged, load
    from .errors import SavedModelError

    inputs = gather_inputs(args)
    model = load(args.dir, tags=parse_tag_set(args.tag_set), backend=args.backend, allow_io=args.allow_io)
    outputs = model.signatures[args.signature_def](**inputs)
    if args.outdir:
        os.makedirs(args.outdir, exist_ok=True)
    values = model.numpy(outputs)
    for key in sorted(values):
        if isinstance(values[key], Ragged):  # components in one .npz, TensorFlow's order
            _write(f"Result for output key {key}:\n{values[key]!r}\n")
            if args.outdir:
                path = os.path.join(args.outdir, key + ".npz")
                if os.path.exists(path) and not args.overwrite:
                    raise SavedModelError(f"{path} exists; pass --overwrite to replace it.")
                parts = values[key].components()
                np.savez(path, flat_values=parts[0], **{f"row_splits_{i}": p for i, p in
                                                          enumerate(parts[1:])})
                _write(f"Output {key} is saved to {path}\n")
            continue
        value = np.asarray(values[key])
        _write(f"Result for output key {key}:\n{value}\n")
        if args.outdir:
            path = os.path.join(args.outdir, key + ".npy")
            if os.path.exists(path) and not args.overwrite:
                raise SavedModelError(f"{path} exists; pass --overwrite to replace it.")
            np.save(path, value, allow_pickle=value.dtype == object)  # strings: as saved_model_cli writes them
            _write(f"Output {key} is saved to {path}\n")
    return 0


# -- demo -------------------------------------------------------------------

def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-lab", action="store_true",
                        help="Do not open the tutorial notebooks in JupyterLab afterwards.")


def run_demo(args) -> int:
    """The main job on the bundled example: show, diagnose, tag-set rules, a run, then the tutorials."""
    from . import TagSetNotFoundError, inspect, load
    from .examples import example_model_path
    from .format.savedmodel import read_saved_model
    from . import showtext

    path = example_model_path()
    _write(f"== The bundled example SavedModel: {path}\n\n$ sm-notebook show --dir {path} --all\n")
    _write(showtext.show_all_text(read_saved_model(path)))
    _write(f"\n$ sm-notebook diagnose --dir {path}\n{inspect(path).diagnose()}\n")
    _write("\n== Exact tag-set matching: load(path, tags='gpu') ->\n")
    try:
        load(path, tags="gpu")
    except TagSetNotFoundError as exc:
        _write(f"{exc}\n")
    model = load(path, tags="serve")
    x = [[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]]
    _write(f"\n== Running signature 'serving_default' on x={x} (numpy backend, no TensorFlow):\n")
    outputs = model.numpy(model.signatures["serving_default"](x=x))
    for key in sorted(outputs):
        _write(f"Result for output key {key}:\n{outputs[key]}\n")
    tokens = [b"cat", b"sat", b"bird"]
    ids = model.numpy(model.signatures["lookup"](tokens=tokens))["ids"]
    _write(f"\n== Vocabulary lookup through the model's asset: {tokens} -> {ids}\n")
    return _open_tutorials(args)


def lab_command(notebooks) -> list[str]:
    """The JupyterLab command line for ``notebooks`` (``--allow-root`` when running as root,
    which JupyterLab otherwise refuses, as in most Docker images)."""
    import os
    command = [sys.executable, "-m", "jupyterlab", str(notebooks)]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command


def _open_tutorials(args) -> int:
    """Open the tutorials in JupyterLab when that can work; otherwise print what to run."""
    import importlib.util
    import os
    import shlex
    from pathlib import Path

    notebooks = Path(__file__).resolve().parent.parent / "notebooks"
    if not notebooks.is_dir():
        _write("\nThe tutorial notebooks are in the source repository's notebooks/ folder.\n")
        return 0
    command = lab_command(notebooks)
    shown = shlex.join(["jupyter", "lab", *command[3:]])
    if importlib.util.find_spec("jupyterlab") is None:
        _write(f"\nTutorials: JupyterLab is not installed. Run:\n"
               f"  {shlex.quote(sys.executable)} -m pip install 'jupyterlab>=4' matplotlib\n  {shown}\n")
        return 0
    if args.no_lab or not sys.stdin.isatty() or os.environ.get("CI"):
        _write(f"\nTutorials: {shown}\n")
        return 0
    _write(f"\n== Opening the tutorials in JupyterLab ({notebooks}); Ctrl-C to stop.\n$ {shown}\n")
    sys.stdout.flush()
    return subprocess_call(command)


def subprocess_call(command) -> int:
    """Run ``command`` in the foreground; Ctrl-C ends it (exit status 0)."""
    import subprocess
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


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
    Subcommand("scan", "list ops the engine cannot run or refuses (IO), before running anything",
               add_scan_arguments, run_scan, "Exit status 1 when a reachable op is unsupported or denied."),
    Subcommand("diff", "compare two SavedModels: tag-sets, signatures, variables, assets, ops",
               add_diff_arguments, run_diff,
               "  sm-notebook diff --dir OLD --dir NEW\nExit status 0 when nothing differs, 1 otherwise."),
    Subcommand("summary", "parameters per layer (a Keras-style table) with totals and bytes",
               add_summary_arguments, run_summary),
    Subcommand("run", "run a signature without TensorFlow (as saved_model_cli run prints it)",
               add_run_arguments, run_run,
               "  sm-notebook run --dir D --tag_set serve --signature_def serving_default \\\n"
               "      --inputs 'x=x.npy' --input_exprs 'y=[1,2]'"),
    Subcommand("demo", "run the main job on the bundled example model, then open the tutorials",
               add_demo_arguments, run_demo),
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
    message = getattr(exc, "command_line_message", None) or str(exc)
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
