"""Named tables of the things a recipe can refer to.

Kinds: generators, discriminators, losses, datasets, metrics and models
(a model is a training algorithm: its networks, train step, sampling modes and
default hyperparameters), converters (official checkpoints -> model folder,
used by ``ganzoo convert FAMILY``), pretrained weight sets (``ganzoo pull NAME``;
see :mod:`ganzoo.zoo`), recipes (YAML files addressable by name:
``ganzoo run quickstart``) and loggers (``train.loggers``; see :mod:`ganzoo.loggers`). Entries are objects or lazy ``"module:attr"``
strings resolved on first use, so listing names never imports torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from ganzoo.errors import RegistryError, did_you_mean

KINDS = ("generators", "discriminators", "losses", "datasets", "metrics", "models", "converters", "pretrained", "recipes",
         "loggers")


@dataclass
class Entry:
    kind: str
    name: str
    target: Any  # the object, or a "module:attr" string until resolved
    plugin: str
    _resolved: Any = field(default=None, repr=False)

    def resolve(self) -> Any:
        if self._resolved is None:
            if isinstance(self.target, str):
                module_name, _, attr = self.target.partition(":")
                try:
                    obj = importlib.import_module(module_name)
                    for part in attr.split(".") if attr else []:
                        obj = getattr(obj, part)
                except (ImportError, AttributeError) as exc:
                    raise RegistryError(
                        f'{self.kind[:-1]} "{self.name}" from plugin "{self.plugin}" cannot be loaded '
                        f"({self.target}: {exc}); reinstall or fix that plugin."
                    ) from exc
                self._resolved = obj
            else:
                self._resolved = self.target
        return self._resolved


class Registry:
    """The tables. One per process, filled by :func:`ganzoo.plugins.get_registry`."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        self.current_plugin = "ganzoo"

    def add(self, kind: str, name: str, target: Any, *, plugin: str | None = None) -> None:
        """Register ``target`` under ``kind``/``name``; a name taken by another plugin is an error."""
        if kind not in self._tables:
            raise RegistryError(f'Unknown registry kind "{kind}"; use one of {", ".join(KINDS)}.')
        plugin = plugin or self.current_plugin
        table = self._tables[kind]
        if name in table:
            other = table[name].plugin
            raise RegistryError(
                f'{kind[:-1]} name "{name}" is registered by both plugin "{other}" and plugin "{plugin}"; '
                f"uninstall one of them or rename the entry."
            )
        table[name] = Entry(kind, name, target, plugin)

    def entry(self, kind: str, name: str) -> Entry:
        table = self._tables.get(kind)
        if table is None:
            raise RegistryError(f'Unknown registry kind "{kind}"; use one of {", ".join(KINDS)}.')
        if name not in table:
            known = ", ".join(sorted(table)) or "none"
            raise RegistryError(
                f'Unknown {kind[:-1]} "{name}".{did_you_mean(name, table)} Known {kind}: {known} '
                f"(see `ganzoo list {kind}`)."
            )
        return table[name]

    def get(self, kind: str, name: str) -> Any:
        return self.entry(kind, name).resolve()

    def names(self, kind: str) -> list[str]:
        return sorted(self._tables[kind])

    def entries(self, kind: str) -> list[Entry]:
        return [self._tables[kind][n] for n in self.names(kind)]

    def find(self, name: str) -> list[Entry]:
        """Every entry called ``name``, whatever its kind."""
        return [t[name] for t in self._tables.values() if name in t]
