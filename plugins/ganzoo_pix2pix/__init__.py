"""pix2pix (Isola et al., CVPR 2017): paired image-to-image translation with a conditional PatchGAN.

Its networks are CycleGAN's (``ganzoo_cyclegan.networks``). Registered lazily:
nothing here imports torch until the model or a dataset is used.
"""

from ganzoo.hookspecs import hookimpl


@hookimpl
def ganzoo_register(registry) -> None:
    registry.add("models", "pix2pix", "ganzoo_pix2pix.model:Pix2Pix")
    registry.add("converters", "pix2pix", "ganzoo_cyclegan.convert:convert_pix2pix")
    registry.add("datasets", "aligned", "ganzoo_pix2pix.data:AlignedDataset")
    registry.add("datasets", "shapes_pairs", "ganzoo_pix2pix.data:ShapesPairsDataset")
