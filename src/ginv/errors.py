"""The one exception type that the command line turns into a one-line error."""


class GinvError(Exception):
    """A user-facing error: bad input, a missing or corrupt file, an impossible setting."""
