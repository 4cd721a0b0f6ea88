"""The hook every ganzoo plugin implements.

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
