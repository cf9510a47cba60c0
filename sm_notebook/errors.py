"""The errors and warnings sm_notebook raises on bad models and bad requests."""


class SavedModelError(Exception):
    """A SavedModel, or a request about one, cannot be honoured.

    Every message says what was asked, what exists, and what to do next.
    """


class TagSetNotFoundError(SavedModelError):
    """No metagraph's tag-set equals the requested one.

    Attributes:
        requested: the tag-set asked for (a frozenset, or None).
        available: every tag-set in the file, in file order.
        suggestions: the likeliest intended tag-sets, best first.
        command_line_message: the same explanation with advice spelled as command-line
            flags (``--tag_set serve,gpu``) instead of Python (``tags=['serve', 'gpu']``).
    """

    def __init__(self, message, requested, available, suggestions, command_line_message=None):
        super().__init__(message)
        self.requested = requested
        self.available = list(available)
        self.suggestions = list(suggestions)
        self.command_line_message = command_line_message or message


class CorruptFileError(SavedModelError):
    """A file of the SavedModel cannot be parsed; names the file and the fault."""

    def __init__(self, path, problem):
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


class SavedModelWarning(UserWarning):
    """A SavedModel loads, but something in it is suspicious (e.g. shadowed metagraphs)."""


class SignatureNotFoundError(SavedModelError, KeyError):
    """No signature with the requested key; ``.available`` lists the keys that exist."""

    def __init__(self, message, requested, available):
        super().__init__(message)
        self.requested = requested
        self.available = list(available)

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0])


class UnsupportedOpError(SavedModelError):
    """A call needs ops sm_notebook's engine does not run.

    Attributes:
        ops: the op names, sorted.
        branch: None when the ops run whenever the signature (or init op) runs; else the
            branch of a conditional that needs them (the call took it).
    """

    def __init__(self, message, ops, branch=None):
        super().__init__(message)
        self.ops = sorted(set(ops))
        self.branch = branch
