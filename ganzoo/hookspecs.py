"""The hooks a ganzoo plugin implements: ``ganzoo_register`` (every plugin) and ``ganzoo_register_commands``.

A plugin is a module (or package) named in the ``ganzoo`` entry-point group of
its distribution. ganzoo's own model families are loaded the same way.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("ganzoo")
hookimpl = pluggy.HookimplMarker("ganzoo")


@hookspec
def ganzoo_register(registry) -> None:
    """Add this plugin's generators, discriminators, losses, datasets, metrics and models.

    ``registry`` is a :class:`ganzoo.registry.Registry`. Register objects or,
    to keep start-up light, ``"module:attribute"`` strings that are imported
    only when first used::

        @hookimpl
        def ganzoo_register(registry):
            registry.add("models", "my_gan", "my_plugin.model:MyGAN")
    """


@hookspec
def ganzoo_register_commands(app) -> None:
    """Add commands to the ``ganzoo`` CLI (``app`` is its :class:`typer.Typer`); optional.

    Runs whenever the CLI starts, ``ganzoo --help`` included: import torch and other heavy
    modules inside the command bodies, not at module level. A :class:`ganzoo.errors.GanzooError`
    raised by a command becomes one red sentence, as for ganzoo's own commands::

        @hookimpl
        def ganzoo_register_commands(app):
            @app.command()
            def hello(name: str):
                print(f"hello {name}")
    """
