"""The one base class for problems a user can fix: the CLI prints their message as one line, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in input, config or environment that the user can correct; ``str(err)`` says how."""
