"""ganzoo's core plugin: the built-in datasets.

Loaded through the ``ganzoo`` entry-point group like every other plugin.
"""

from ganzoo.hookspecs import hookimpl


@hookimpl
def ganzoo_register(registry) -> None:
    registry.add("datasets", "shapes", "ganzoo.data.shapes:ShapesDataset")
    registry.add("datasets", "imagefolder", "ganzoo.data.imagefolder:ImageFolderDataset")
    registry.add("datasets", "hub", "ganzoo.data.hub:HubImageDataset")
