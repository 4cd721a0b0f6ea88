"""User-facing errors.

Every error a user can cause is a :class:`GanzooError` whose message is one
sentence: what is wrong, where, and what to do. The CLI prints it and exits
with code 2; it never shows a traceback for these.
"""

from __future__ import annotations

import difflib
from typing import Iterable


class GanzooError(Exception):
    """Base class for errors caused by user input (recipes, data, weights, names)."""

    exit_code = 2


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
