"""Plugin discovery: every module in the ``ganzoo`` entry-point group, its registry entries and its commands.

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
failures: dict[str, str] = {}  # plugin -> why it failed to load or register
command_failures: dict[str, str] = {}  # plugin -> why its commands could not be added


def _entry_points() -> list[metadata.EntryPoint]:
    eps = list(metadata.entry_points(group=GROUP))
    # The same distribution may be visible twice (e.g. editable + site-packages); keep the first.
    seen: dict[str, metadata.EntryPoint] = {}
    for ep in eps:
        seen.setdefault(ep.name, ep)
    return list(seen.values())


def _load_plugins(pm: pluggy.PluginManager, failures: dict[str, str]) -> list[tuple[str, str]]:
    """Import and register every plugin module in ``pm``; return (entry-point name, label) of those that loaded."""
    pm.add_hookspecs(hookspecs)
    only = {n.strip() for n in os.environ.get("GANZOO_PLUGINS", "").split(",") if n.strip()}
    loaded = []
    for ep in sorted(_entry_points(), key=lambda e: (e.name != "core", e.name)):
        if only and ep.name not in only and ep.name != "core":
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # a broken third-party plugin must not break the CLI
            failures[ep.name] = f"{type(exc).__name__}: {exc}"
            continue
        dist = getattr(ep, "dist", None)
        loaded.append((ep.name, ep.name if dist is None or dist.name == "ganzoo" else f"{ep.name} ({dist.name})"))
    return loaded


def load_registry() -> Registry:
    """Build a fresh registry from all installed plugins (see :func:`get_registry`)."""
    failures.clear()
    pm = pluggy.PluginManager(GROUP)
    registry = Registry()
    for name, label in _load_plugins(pm, failures):
        registry.current_plugin = label
        try:
            # Call this plugin's hook alone so each entry is attributed to its plugin.
            for impl in pm.hook.ganzoo_register.get_hookimpls():
                if impl.plugin_name == name:
                    impl.function(registry=registry)
        except GanzooError:
            raise
        except Exception as exc:
            failures[name] = f"{type(exc).__name__}: {exc}"
    registry.current_plugin = "ganzoo"
    return registry


def register_commands(app, *, wrap=None) -> None:
    """Let every plugin add its CLI commands to ``app`` (``ganzoo_register_commands``); ``wrap`` decorates each
    added command's function (the CLI's one-sentence errors). A plugin whose hook fails is reported by name."""
    command_failures.clear()
    pm = pluggy.PluginManager(GROUP)
    for name, _ in _load_plugins(pm, command_failures):
        for impl in pm.hook.ganzoo_register_commands.get_hookimpls():
            if impl.plugin_name != name:
                continue
            before = len(app.registered_commands)
            try:
                impl.function(app=app)
            except Exception as exc:
                command_failures[name] = f"{type(exc).__name__} in its commands: {exc}"
                del app.registered_commands[before:]
                continue
            if wrap is not None:
                for info in app.registered_commands[before:]:
                    info.callback = wrap(info.callback)


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
