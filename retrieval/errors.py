"""The one exception type a user may see: a mistake or a broken input, said in one line."""


class UserError(Exception):
    """A problem the user can fix; its message says what happened and how to fix it."""
