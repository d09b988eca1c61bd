"""The one exception type that the CLI turns into a one-line message instead of a traceback."""


class UserError(Exception):
    """Bad input from the user: a file, an option or a setting. The message names it and says
    what was expected."""
