"""``%savedmodel`` / ``%%savedmodel``: inspect, diagnose, run, scan and edit SavedModels.

Load with ``%load_ext sm_notebook``. User mistakes (and SavedModelError from
the package) become IPython UsageErrors: one message, no traceback.
"""
from __future__ import annotations

import ast
import difflib
import os
import re
from pathlib import Path

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

COMMANDS = ("show", "diagnose", "run", "edit", "scan", "diff", "summary", "graph")
WIDGETS = ("model", "signatures", "tags", "assets", "run", "browser")
BACKENDS = ("numpy", "cupy")
OPTIONS_FOR = {  # option attribute -> commands that accept it (cell mode counts as "cell")
    "tags": {"show", "run", "edit", "scan", "summary", "graph", "cell"},
    "signature": {"show", "run", "edit", "graph"},
    "backend": {"run", "edit"},
    "widget": {"edit"},
    "write": {"cell"},
    "overwrite": {"cell"},
    "to": {"cell"},
    "inputs": {"run", "diff"},
}
OPTION_FLAGS = ("--tags", "--tag_set", "--signature", "--signature_def", "--backend", "--output",
                "--widget", "--write", "--overwrite", "--to")


def split_arguments(line: str) -> list[str]:
    """Split at top-level whitespace, keeping brackets and quotes together.

    ``x=np.zeros((2, 3))`` stays one token; a token that is one quoted string
    (a path with spaces) is unquoted.
    """
    tokens, current, depth, quote = [], [], 0, None
    for ch in line:
        if quote:
            current.append(ch)
            if ch == quote and (len(current) < 2 or current[-2] != "\\"):
                quote = None
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch in "([{":
            depth += 1
            current.append(ch)
        elif ch in ")]}":
            depth = max(depth - 1, 0)
            current.append(ch)
        elif ch.isspace() and depth == 0:
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(ch)
    if quote:
        raise UsageError(f"Unclosed quote {quote} in: {line.strip()}")
    if current:
        tokens.append("".join(current))
    result = []
    for token in tokens:
        if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
            try:
                token = ast.literal_eval(token)
            except (ValueError, SyntaxError):
                pass
        result.append(token)
    return result


@magics_class
class SavedModelMagics(Magics):
    """The %savedmodel line and cell magic."""

    @magic_arguments()
    @argument("command", nargs="?", help=f"one of: {', '.join(COMMANDS)}")
    @argument("path", nargs="?", help="the SavedModel directory")
    @argument("inputs", nargs="*", metavar="NAME=VALUE",
              help="run: signature inputs, each VALUE a notebook variable, a literal or a numpy "
                   "constructor (parsed, never evaluated)")
    @argument("-t", "--tags", "--tag_set", dest="tags",
              help="tag-set, comma-separated, e.g. serve,gpu ({} for the empty set)")
    @argument("-s", "--signature", "--signature_def", dest="signature",
              help="signature key (run: default serving_default)")
    @argument("-b", "--backend", choices=BACKENDS, help="run: array backend (default numpy)")
    @argument("-o", "--output", metavar="NAME",
              help="store the result in this notebook variable (run: the dict of outputs)")
    @argument("-w", "--widget", choices=WIDGETS, help="edit: which widget to open (default model: every tab)")
    @argument("--write", action="store_true", help="cell: write the edited model (default: dry run)")
    @argument("--overwrite", action="store_true", help="cell: allow replacing an existing directory")
    @argument("--to", metavar="DIR", help="cell: write here instead of back to PATH")
    @no_var_expand  # {expr} and $name stay text: the line is parsed, never run
    @line_cell_magic
    def savedmodel(self, line, cell=None):
        """Inspect, diagnose, run, scan and edit TensorFlow SavedModels (no TensorFlow needed).

        %savedmodel show PATH [--tags serve,gpu] [--signature KEY]
            Tag-sets, signatures (dtype/shape), variables, assets and op census;
            errors and warnings from the diagnostics come first.
        %savedmodel diagnose PATH
            Every problem, worst first, each with its fix.
        %savedmodel run PATH [--signature KEY] [--tags ...] [--backend numpy|cupy] x=VALUE ... [-o NAME]
            Call a signature; each VALUE is a notebook variable's name, a
            Python literal ([[1.0, 2.0]], b"text") or a numpy constructor with
            literal arguments (np.zeros((2, 3), np.float32), np.arange(6).reshape(2, 3)).
            Values are parsed, never evaluated (see sm_notebook.literals): compute
            anything else in a cell first. The outputs are shown and, with -o NAME,
            stored as a dict in NAME. The line is taken as typed: IPython's {expr}
            and $name expansion does not apply. A bar shows the ops done; Ctrl-C
            (interrupt the kernel) stops the run at the next op, leaving the model usable.
        %savedmodel scan PATH [--tags ...]
            Ops the engine cannot run (unsupported) or will not run (denied).
        %savedmodel graph PATH [--signature KEY] [--tags T]
            The signature's graph (default serving_default): an interactive view in
            JupyterLab (calls and name scopes expand in place, search, details), a
            static SVG elsewhere. Same as sm_notebook.inspect(PATH).graph(KEY, T).
        %savedmodel diff OLD NEW
            What differs: tag-sets, signatures, variables (max abs difference of
            changed values), assets and op counts.
        %savedmodel summary PATH [--tags ...]
            Parameters per layer (a Keras-style table) with totals and bytes.
        %savedmodel edit PATH [--widget model|signatures|tags|assets|run|browser]
            Open an editor widget: by default the model editor (signatures,
            tag-sets and assets as tabs, one Save with a full diff preview).

        %%savedmodel PATH [--tags serve] [--write [--to DIR] [--overwrite]]
            Apply the edits in the cell through sm_notebook.Builder. Without
            --write it is a dry run showing the diff; --write saves (to PATH
            itself only with --overwrite). One edit per line, e.g.:
                rename: predict -> serving_default
                rename_input: serving_default x -> features
                rename_output: serving_default output_0 -> probabilities
                method: serving_default classify
                remove: old_signature
                add: scores
                  inputs: x=x:0
                  outputs: probabilities=probabilities:0
                tags: serve -> serve,gpu
                add_meta_graph: serve,tpu from serve
                remove_meta_graph: train
                add_asset: data/vocab.txt
                meta_graph: serve,gpu   # later signature edits apply to this tag-set
            The full format: help(sm_notebook.notebook.edits).

        Options -o NAME store the result object (SavedModelInfo, DiagnosticReport,
        scan result, GraphView, widget, Builder) in NAME for every sub-command.
        """
        args = self._parse(line, cell)
        try:
            return self._dispatch(args, cell)
        except UsageError:
            raise
        except Exception as exc:
            from ..errors import SavedModelError
            if isinstance(exc, SavedModelError):
                raise UsageError(str(exc)) from None
            raise

    # ------------------------------------------------------------------ parsing

    def _parse(self, line, cell):
        tokens = split_arguments(line)
        if cell is not None and (not tokens or tokens[0] not in COMMANDS):
            tokens.insert(0, "edit")
        args = self.savedmodel.parser.parse_intermixed_args(tokens)
        if args.command is None:
            raise UsageError(f"%savedmodel needs a sub-command: {', '.join(COMMANDS)} "
                             "(see %savedmodel?).")
        if args.command not in COMMANDS:
            close = difflib.get_close_matches(args.command, COMMANDS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UsageError(f"Unknown sub-command {args.command!r}; {hint}"
                             f"sub-commands: {', '.join(COMMANDS)}.")
        mode = "cell" if cell is not None else args.command
        if cell is not None and args.command != "edit":
            raise UsageError(f"%%savedmodel is for edits: write %%savedmodel PATH, "
                             f"or use %savedmodel {args.command} as a line magic.")
        if args.path is None:
            raise UsageError(f"%savedmodel {args.command} needs the SavedModel directory: "
                             f"%savedmodel {args.command} PATH.")
        for name, allowed in OPTIONS_FOR.items():
            value = getattr(args, name)
            if value and mode not in allowed:
                shown = "NAME=VALUE inputs" if name == "inputs" else f"--{name}"
                where = "%%savedmodel" if mode == "cell" else f"%savedmodel {mode}"
                raise UsageError(f"{where} does not take {shown}.")
        path = Path(os.path.expanduser(args.path))
        if not path.exists():
            raise UsageError(f"No such directory: {args.path}")
        if not path.is_dir():
            raise UsageError(f"{args.path} is a file; pass the SavedModel directory that holds it.")
        args.path = path
        if args.tags is not None:
            from .edits import parse_tag_set
            args.tags = parse_tag_set(args.tags)
        if args.output is not None and not args.output.isidentifier():
            raise UsageError(f"-o needs a Python variable name, got {args.output!r}.")
        return args

    def _dispatch(self, args, cell):
        if cell is not None:
            return self._edit_cell(args, cell)
        return getattr(self, f"_{args.command}")(args)

    def _store(self, args, value):
        if args.output:
            self.shell.user_ns[args.output] = value

    @staticmethod
    def _display(text, html=None):
        from IPython.display import display
        bundle = {"text/plain": text}
        if html is not None:
            bundle["text/html"] = html
        display(bundle, raw=True)

    # ------------------------------------------------------------------ sub-commands

    def _show(self, args):
        import sm_notebook
        from .. import render as display
        info = sm_notebook.inspect(args.path)
        if args.tags is not None:
            info.meta_graph(args.tags)  # a clear error when the tag-set does not exist
        if args.signature is not None:
            _check_signature(info, args.signature, args.tags)
        report = info.diagnose()
        self._display(display.saved_model_text(info, args.tags, args.signature, report),
                      display.saved_model_html(info, args.tags, args.signature, report))
        self._store(args, info)

    def _diagnose(self, args):
        import sm_notebook
        from .. import render as display
        report = sm_notebook.inspect(args.path).diagnose()
        self._display(display.report_text(report), display.report_html(report))
        self._store(args, report)

    def _scan(self, args):
        """Scan the metagraph load would pick; with several and no --tags, scan each."""
        from ..engine.scan import scan_meta_graph, scan_model
        from .. import render as display
        meta_graphs = _read_proto(args.path).meta_graphs
        if args.tags is None and len(meta_graphs) > 1:
            reports = [scan_meta_graph(mg, str(args.path), list(mg.meta_info_def.tags)) for mg in meta_graphs]
        else:
            reports = [scan_model(args.path, tags=args.tags)]
        self._display("\n\n".join(display.scan_text(r) for r in reports),
                      "".join(display.scan_html(r) for r in reports))
        self._store(args, reports[0] if len(reports) == 1 else reports)

    def _diff(self, args):
        import sm_notebook
        if len(args.inputs) != 1:
            raise UsageError("%savedmodel diff needs two SavedModel directories: "
                             "%savedmodel diff OLD NEW.")
        other = Path(os.path.expanduser(args.inputs[0]))
        if not other.is_dir():
            raise UsageError(f"No such directory: {args.inputs[0]}")
        result = sm_notebook.diff(args.path, other)
        self._display(str(result), result._repr_html_())
        self._store(args, result)

    def _summary(self, args):
        import sm_notebook
        result = sm_notebook.summary(args.path, args.tags)
        self._display(str(result), result._repr_html_())
        self._store(args, result)

    def _run(self, args):
        import sm_notebook
        from .. import render as display
        from .widgets.progress import Progress, cancel_on_interrupt
        info = sm_notebook.inspect(args.path)
        mg = _chosen_meta_graph(info, args)
        key = args.signature or _default_signature(mg)
        sig = info.signature(key, args.tags)
        inputs = self._parse_inputs(args.inputs, sig)
        backend = args.backend or "numpy"
        progress = Progress(f"run {key}", steps=2, show=_has_widget_frontend(self.shell))
        with progress:
            progress.step(f"loading {args.path.name}")
            model = sm_notebook.load(args.path, tags=args.tags if args.tags is not None else mg.tags,
                                     backend=backend)
            progress.step(f"running {key!r}")
            watch = progress.watch()  # per-op progress; Ctrl-C stops at the next op
            with display.Timer() as timer, cancel_on_interrupt(watch):
                outputs = model.signatures[key].run_watched(watch, **inputs)
        from .input_files import score_labels
        outputs = dict(outputs)
        result = display.RunResult(outputs, key, mg.tags, backend, timer.seconds, inputs,
                                   labels=score_labels(mg, outputs))
        self._display(display.run_result_text(result), display.run_result_html(result))
        self._store(args, result.outputs)

    def _graph(self, args):
        import sm_notebook
        from IPython.display import display
        info = sm_notebook.inspect(args.path)
        key = args.signature or _default_signature(_chosen_meta_graph(info, args))
        view = info.graph(key, tags=args.tags)
        display(view)
        self._store(args, view)

    def _parse_inputs(self, assignments, sig) -> dict:
        """NAME=VALUE items -> inputs; values parsed by sm_notebook.literals (variables looked up)."""
        from ..errors import SavedModelError
        from ..literals import parse_value
        inputs = {}
        for item in assignments:
            name, sep, expr = item.partition("=")
            name = name.strip()
            if not sep or not name or not expr.strip():
                raise UsageError(f"Inputs are NAME=VALUE, got {item!r}.")
            if name not in sig.inputs:
                raise UsageError(f"Signature {sig.key!r} has no input {name!r}; its inputs are: "
                                 f"{_describe_inputs(sig)}.")
            if name in inputs:
                raise UsageError(f"Input {name!r} is given twice.")
            try:
                inputs[name] = parse_value(expr, what=f"input {name}", names=self.shell.user_ns)
            except SavedModelError as exc:
                raise UsageError(str(exc)) from None
        missing = [k for k in sig.inputs if k not in inputs]
        if missing:
            raise UsageError(f"Missing input(s) {', '.join(missing)} for signature {sig.key!r}; "
                             f"give each as NAME=VALUE ({_describe_inputs(sig)}).")
        return inputs

    def _edit(self, args):
        from IPython.display import display
        from . import widgets
        if args.widget in (None, "model"):
            widget = widgets.ModelEditor(args.path, tags=args.tags, signature=args.signature)
        elif args.widget == "signatures":
            widget = widgets.SignatureEditor(args.path, tags=args.tags, signature=args.signature)
        elif args.widget == "tags":
            widget = widgets.TagSetEditor(args.path)
        elif args.widget == "assets":
            widget = widgets.AssetEditor(args.path, tags=args.tags)
        elif args.widget == "run":
            widget = widgets.RunPanel(args.path, tags=args.tags, signature=args.signature,
                                      backend=args.backend or "numpy", namespace=self.shell.user_ns)
        else:
            widget = widgets.ModelBrowser(args.path, tags=args.tags, signature=args.signature)
        display(widget)
        self._store(args, widget)

    def _edit_cell(self, args, cell):
        from ..render import diff_html
        from .edits import parse_edits, preview_edits
        edits = parse_edits(cell, tags=args.tags)
        if not edits:
            raise UsageError("The %%savedmodel cell has no edits (see %savedmodel? for the format).")
        target = Path(os.path.expanduser(args.to)) if args.to else args.path
        if args.write and target.exists() and not args.overwrite:
            raise UsageError(f"{target} exists; add --overwrite to replace it"
                             f"{' (this writes back to PATH)' if not args.to else ''}, or --to NEW_DIR.")
        builder, diff, notes = preview_edits(args.path, edits)
        if args.write:
            builder.save(target, overwrite=args.overwrite)
            header = f"Wrote {target}: {len(edits)} edit(s)."
        else:
            header = f"Dry run on {args.path}: {len(edits)} edit(s); nothing written (add --write to save)."
        notes = [f"Warning: {n}" for n in notes]
        self._display("\n".join([header, *notes, diff or "(no visible change)"]), diff_html(header, diff, notes))
        self._store(args, builder)


# ---------------------------------------------------------------------- helpers

def _has_widget_frontend(shell) -> bool:
    """True in a Jupyter kernel (where widgets render), False in a terminal or test shell."""
    return getattr(shell, "kernel", None) is not None


def _read_proto(path):
    from ..format.savedmodel import read_saved_model
    return read_saved_model(path)


def _describe_inputs(sig) -> str:
    from ..render import dtype_text, shape_text
    return ", ".join(f"{k} ({dtype_text(s.dtype)} {shape_text(s.shape)})" for k, s in sig.inputs.items()) or "none"


def callable_signatures(mg) -> list[str]:
    """Signature keys a user would call (TF2's __saved_model_init_op is left out)."""
    return [k for k in mg.signatures if not k.startswith("__saved_model")]


def _chosen_meta_graph(info, args):
    """The metagraph ``--tags`` selects; with several and no ``--tags``, a UsageError listing them."""
    if args.tags is None and len(info.meta_graphs) > 1:
        from .edits import tag_set_text
        raise UsageError(f"{args.path} has {len(info.meta_graphs)} metagraphs; pass --tags, one of: "
                         f"{' | '.join(tag_set_text(t) for t in info.tag_sets)}.")
    return info.meta_graph(args.tags)


def _default_signature(mg) -> str:
    keys = callable_signatures(mg)
    if "serving_default" in keys:
        return "serving_default"
    if len(keys) == 1:
        return keys[0]
    raise UsageError(f"Pass --signature KEY; the metagraph's signatures are: {', '.join(keys) or 'none'}.")


def _check_signature(info, key, tags):
    """The SignatureInfo for ``key``; with several metagraphs and no tags, the one holding it."""
    if tags is not None or len(info.meta_graphs) == 1:
        return info.signature(key, tags)
    holders = [mg for mg in info.meta_graphs if key in mg.signatures]
    if len(holders) == 1:
        return holders[0].signatures[key]
    from ..tags import format_tag_set
    if holders:
        raise UsageError(f"Signature {key!r} exists in several tag-sets "
                         f"({', '.join(format_tag_set(mg.tags) for mg in holders)}); pass --tags.")
    every = sorted({k for mg in info.meta_graphs for k in mg.signatures})
    close = difflib.get_close_matches(key, every, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UsageError(f"No signature {key!r} in any metagraph; signatures: {', '.join(every) or 'none'}.{hint}")


# ---------------------------------------------------------------------- completion

_INFO_CACHE: dict = {}


def _cached_info(path: str):
    """inspect(path), cached on the saved_model.pb modification time; None when it fails."""
    try:
        import sm_notebook
        from ..format.savedmodel import saved_model_path
        stamp = saved_model_path(path).stat().st_mtime_ns
        key = (os.path.abspath(path), stamp)
        if key not in _INFO_CACHE:
            _INFO_CACHE.clear()
            _INFO_CACHE[key] = sm_notebook.inspect(path)
        return _INFO_CACHE[key]
    except Exception:  # completion must never raise
        return None


def _path_candidates(prefix: str) -> list[str]:
    expanded = os.path.expanduser(prefix)
    folder, stem = os.path.split(expanded)
    try:
        names = sorted(os.listdir(folder or "."))
    except OSError:
        return []
    result = []
    for name in names:
        if not name.startswith(stem) or (name.startswith(".") and not stem.startswith(".")):
            continue
        full = os.path.join(folder, name)
        if os.path.isdir(full):
            shown = os.path.join(os.path.split(prefix)[0], name) if folder else name
            result.append(shown + "/")
    return result


def complete_savedmodel(shell, event) -> list[str]:
    """Completions for %savedmodel: sub-commands, options, paths, tag-sets, signature keys, inputs."""
    text = event.text_until_cursor
    head = re.match(r"\s*%%?savedmodel\s*", text)
    if head is None:
        return []
    cell_mode = text.lstrip().startswith("%%")
    rest = text[head.end():]
    try:
        words = split_arguments(rest)
    except UsageError:
        return []
    current = "" if not rest or rest[-1].isspace() else words.pop()
    candidates = _candidates(words, current, cell_mode)
    # IPython completes only the part after its own delimiters (',', '=', ...): trim what it keeps.
    keep = current[: len(current) - len(event.symbol)] if event.symbol and current.endswith(event.symbol) else ""
    return [c[len(keep):] for c in candidates if c.startswith(current)]


def _candidates(words, current, cell_mode) -> list[str]:
    positional = [w for i, w in enumerate(words)
                  if not w.startswith("-") and not (i and words[i - 1] in _VALUE_OPTIONS)]
    if cell_mode and (not positional or positional[0] not in COMMANDS):
        positional.insert(0, "edit")
    previous = words[-1] if words else ""
    path = positional[1] if len(positional) > 1 else None
    command = positional[0] if positional else None
    if previous in _VALUE_OPTIONS:
        option = _VALUE_OPTIONS[previous]
        if option == "backend":
            return list(BACKENDS)
        if option == "widget":
            return list(WIDGETS)
        if option == "to":
            return _path_candidates(current)
        info = _cached_info(path) if path else None
        if info is None:
            return []
        from .edits import tag_set_text
        if option == "tags":
            if "," in current:  # complete the tag being typed after the others
                head, _, _ = current.rpartition(",")
                typed = set(head.split(","))
                every = sorted({t for ts in info.tag_sets for t in ts} - typed)
                return [f"{head},{t}" for t in every]
            return list(dict.fromkeys(tag_set_text(t) for t in info.tag_sets))
        if option == "signature":
            return sorted({k for mg in _meta_graphs_for(info, words) for k in callable_signatures(mg)})
        return []
    if current.startswith("-"):
        return list(OPTION_FLAGS)
    if command is None and not cell_mode:
        return list(COMMANDS)
    if path is None:
        return _path_candidates(current)
    if command == "run":
        info = _cached_info(path)
        key = _option_value(words, "signature")
        if info is None:
            return []
        sigs = [mg.signatures[key] for mg in _meta_graphs_for(info, words) if key in mg.signatures] if key else []
        if not sigs:
            sigs = [mg.signatures["serving_default"] for mg in _meta_graphs_for(info, words)
                    if "serving_default" in mg.signatures]
        given = {w.split("=", 1)[0] for w in words if "=" in w}
        return [f"{k}=" for k in (sigs[0].inputs if sigs else {}) if k not in given]
    return []


_VALUE_OPTIONS = {"-t": "tags", "--tags": "tags", "--tag_set": "tags", "-s": "signature",
                  "--signature": "signature", "--signature_def": "signature",
                  "-b": "backend", "--backend": "backend", "-w": "widget", "--widget": "widget",
                  "-o": "output", "--output": "output", "--to": "to"}


def _option_value(words, name):
    for i, w in enumerate(words[:-1]):
        if _VALUE_OPTIONS.get(w) == name:
            return words[i + 1]
    return None


def _meta_graphs_for(info, words):
    tags = _option_value(words, "tags")
    if tags is None:
        return info.meta_graphs
    from .edits import parse_tag_set
    wanted = parse_tag_set(tags)
    return [mg for mg in info.meta_graphs if mg.tags == wanted]


def load_ipython_extension(ipython):
    """Register the magics and their tab completion."""
    ipython.register_magics(SavedModelMagics)

    def completer(self, event):
        return complete_savedmodel(ipython, event)

    for key in ("%savedmodel", "%%savedmodel"):
        ipython.set_hook("complete_command", completer, str_key=key)
