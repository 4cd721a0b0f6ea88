"""Plugin discovery: every module in the ``ganzoo`` entry-point group.

Built-in model families are plugins like any other (declared in ganzoo's own
pyproject). A plugin that fails to import is recorded in :data:`failures` and
reported by name; the others still load. ``GANZOO_PLUGINS=a,b`` limits loading
to the named entry points (useful to isolate a broken plugin).
"""

from __future__ import annotations

import os
from importlib import metadata

import pluggy

from ganzoo import hookspecs
from ganzoo.errors import GanzooError
from ganzoo.registry import Registry

GROUP = "ganzoo"

_registry: Registry | None = None
failures: dict[str, str] = {}


def _entry_points() -> list[metadata.EntryPoint]:
    eps = list(metadata.entry_points(group=GROUP))
    # The same distribution may be visible twice (e.g. editable + site-packages); keep the first.
    seen: dict[str, metadata.EntryPoint] = {}
    for ep in eps:
        seen.setdefault(ep.name, ep)
    return list(seen.values())


def load_registry() -> Registry:
    """Build a fresh registry from all installed plugins (see :func:`get_registry`)."""
    failures.clear()
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    only = {n.strip() for n in os.environ.get("GANZOO_PLUGINS", "").split(",") if n.strip()}
    registry = Registry()
    for ep in sorted(_entry_points(), key=lambda e: (e.name != "core", e.name)):
        if only and ep.name not in only and ep.name != "core":
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken third-party plugin must not break the CLI
            failures[ep.name] = f"{type(exc).__name__}: {exc}"
            continue
        dist = getattr(ep, "dist", None)
        label = ep.name if dist is None or dist.name == "ganzoo" else f"{ep.name} ({dist.name})"
        registry.current_plugin = label
        try:
            pm.register(plugin, name=ep.name)
            # Call this plugin's hook alone so each entry is attributed to its plugin.
            for impl in pm.hook.ganzoo_register.get_hookimpls():
                if impl.plugin_name == ep.name:
                    impl.function(registry=registry)
        except GanzooError:
            raise
        except Exception as exc:
            failures[ep.name] = f"{type(exc).__name__}: {exc}"
    registry.current_plugin = "ganzoo"
    return registry


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _registry
    if _registry is None:
        _registry = load_registry()
    return _registry


def reset() -> None:
    """Forget the loaded registry (tests, or after installing a plugin)."""
    global _registry
    _registry = None
