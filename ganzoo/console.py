"""The CLI's two consoles and its error convention, for core and plugin commands alike.

Every command answers a :class:`ganzoo.errors.GanzooError` with one red sentence and exit code 2 (no
traceback): :func:`friendly` does that, and commands that plugins add are wrapped in it automatically.
"""

from __future__ import annotations

import functools

import typer
from rich.console import Console

from ganzoo.errors import GanzooError

err = Console(stderr=True)
out = Console()
#: ``ganzoo --verbose``: show what libraries log (the Hub client's retries and warnings); set per command.
VERBOSE = False


def friendly(fn):
    """Turn GanzooError into one red sentence and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GanzooError as exc:
            from rich.markup import escape

            # escape: messages quote user text (keys, paths), and "[...]" in them is not rich markup
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=exc.exit_code) from None

    return wrapper


def registry():
    """The plugin registry, after warning (once per command) about plugins that failed to load."""
    from ganzoo.plugins import command_failures, failures, get_registry

    loaded = get_registry()
    for name, why in {**failures, **command_failures}.items():
        err.print(f"[yellow]warning:[/] plugin [bold]{name}[/] failed to load and was skipped ({why}).", highlight=False)
    return loaded
