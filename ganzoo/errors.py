"""User-facing errors.

Every error a user can cause is a :class:`GanzooError` whose message is one
sentence: what is wrong, where, and what to do. The CLI prints it and exits
with code 2; it never shows a traceback for these.
"""

from __future__ import annotations

import difflib
from typing import Iterable


#: In a message longer than this, words (values quoted back) over MAX_WORD characters are cut to their start
#: and end; one still over twice this is cut in the middle (its start says what is wrong, its end what to do).
MAX_MESSAGE, MAX_WORD = 500, 120


class GanzooError(Exception):
    """Base class for errors caused by user input (recipes, data, weights, names).

    The message is made one tidy sentence on the way in: C++ stack frames that a library error quoted in it
    are dropped, line breaks become spaces, and in a message over :data:`MAX_MESSAGE` characters a huge quoted
    value keeps its start and end with the number of characters cut in between.
    """

    exit_code = 2

    def __init__(self, *args):
        if len(args) == 1 and isinstance(args[0], str):
            args = (tidy_message(args[0]),)
        super().__init__(*args)


def tidy_message(message: str) -> str:
    """``message`` as one line: no C++ frames, no line breaks, no word over :data:`MAX_WORD` characters once it
    is longer than :data:`MAX_MESSAGE`, and at most about twice that."""
    import re

    # PyTorch (TORCH_SHOW_CPP_STACKTRACES=1, or some c10 errors) appends "Exception raised from ... frame #0 ..."
    # up to the end of its own message; a quoted one ends at the bracket or quote that closes it.
    message = re.sub(r"\s*Exception raised from .*?(?=\)[;.,]|$)", "", message, flags=re.S)
    message = re.sub(r"\s*(C\+\+ CapturedTraceback:|frame #\d+:).*?(?=\)[;.,]|$)", "", message, flags=re.S)
    message = " ".join(message.split())
    if len(message) <= MAX_MESSAGE:
        return message
    # First the giants: a value quoted back (a 69 KB --set) keeps its start and end.
    words = [w if len(w) <= MAX_WORD else f"{w[:60]} [{len(w) - 80:,} characters cut] {w[-20:]}" for w in message.split(" ")]
    message = " ".join(words)
    if len(message) > 2 * MAX_MESSAGE:  # many ordinary words: the start says what is wrong, the end what to do
        head, tail = message[: MAX_MESSAGE - 150], message[-250:]
        message = f"{head} [{len(message) - len(head) - len(tail):,} characters cut] {tail}"
    return message


class RecipeError(GanzooError):
    """A recipe file or override is malformed or invalid."""


class RegistryError(GanzooError):
    """An unknown or clashing registry name."""


class DataError(GanzooError):
    """A dataset folder or image cannot be used."""


class SplitMissing(DataError):
    """A dataset has no such split at all (e.g. no val/ folder): the trainer then draws its samples from the
    training split. A split that exists but is unusable is a plain DataError."""


class CheckpointError(GanzooError):
    """A model folder, checkpoint or weights file cannot be used."""


class TrainingError(GanzooError):
    """Training stopped (non-finite loss, unwritable output, ...)."""


def name_list(names: Iterable[str], limit: int = 8) -> str:
    """``a, b, c`` for a few names; the first ``limit`` and how many more for a long list (a message stays a sentence)."""
    names = [str(n) for n in names]
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit} more"


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean "x"?' when a close match exists, else ''."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f' Did you mean "{matches[0]}"?' if matches else ""


class OutputError(GanzooError):
    """An output path cannot be used or written (a file where a folder belongs, a read-only or full disk, an
    output that would overwrite the inputs)."""
