"""The one exception type the CLI shows as a single clear line (the traceback only with ``--debug``)."""


class MindcodeError(Exception):
    """A user-facing error: bad input, a missing file, an unknown name. The message says what and where."""
