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
    """Turn GanzooError (and a host MemoryError) into one red sentence and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GanzooError as exc:
            _say(str(exc))
            raise typer.Exit(code=exc.exit_code) from None
        except MemoryError:
            # Host memory, not a GPU's (the trainer answers CUDA OOM itself): one sentence, not a traceback.
            name = fn.__name__.removesuffix("_cmd").replace("_", "-")
            _say(f"Out of host memory in `ganzoo {name}` (a MemoryError); use smaller inputs (fewer or smaller images, a "
                 "lower batch size or data.image_size) or free memory, then try again.")
            raise typer.Exit(code=GanzooError.exit_code) from None
        except OSError as exc:
            # An I/O error no command turned into a sentence of its own (a read-only or full disk, a path under a
            # file): still one sentence naming the path, never a traceback.
            from ganzoo.output_paths import reason

            where = f" {exc.filename}" if exc.filename else ""
            _say(f"Cannot read or write{where} ({reason(exc)}); check the path, the free space and the permissions, or "
                 "choose another path.")
            raise typer.Exit(code=GanzooError.exit_code) from None

    return wrapper


def _say(message: str) -> None:
    from rich.markup import escape

    from ganzoo.errors import tidy_message

    # escape: messages quote user text (keys, paths), and "[...]" in them is not rich markup
    err.print(f"[bold red]error:[/] {escape(tidy_message(message))}", highlight=False, soft_wrap=True)


def registry():
    """The plugin registry, after warning (once per command) about plugins that failed to load."""
    from ganzoo.plugins import command_failures, failures, get_registry

    loaded = get_registry()
    for name, why in {**failures, **command_failures}.items():
        err.print(f"[yellow]warning:[/] plugin [bold]{name}[/] failed to load and was skipped ({why}).", highlight=False)
    return loaded
