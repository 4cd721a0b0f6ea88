"""CycleGAN (Zhu et al., ICCV 2017) and pix2pix (Isola et al., CVPR 2017): one upstream codebase, one package.

CycleGAN translates between two unpaired domains with cycle consistency; pix2pix
learns paired translation with a conditional PatchGAN. They share the networks
(ResNet and U-Net generators, PatchGAN and pixel discriminators) and the folder
helpers. Registered lazily: nothing here imports torch until a network, dataset
or model is used.
"""

from ganzoo.api import hookimpl


@hookimpl
def ganzoo_register(registry) -> None:
    registry.add("generators", "cyclegan.resnet_generator", "ganzoo_cyclegan.networks:ResnetGenerator")
    registry.add("generators", "cyclegan.unet_generator", "ganzoo_cyclegan.networks:UnetGenerator")
    registry.add("discriminators", "cyclegan.nlayer_discriminator", "ganzoo_cyclegan.networks:NLayerDiscriminator")
    registry.add("discriminators", "cyclegan.pixel_discriminator", "ganzoo_cyclegan.networks:PixelDiscriminator")
    registry.add("models", "cyclegan", "ganzoo_cyclegan.model:CycleGAN")
    registry.add("models", "pix2pix", "ganzoo_cyclegan.pix2pix:Pix2Pix")
    registry.add("converters", "cyclegan", "ganzoo_cyclegan.convert:convert_cyclegan")
    registry.add("converters", "pix2pix", "ganzoo_cyclegan.convert:convert_pix2pix")
    registry.add("datasets", "unaligned", "ganzoo_cyclegan.data:UnalignedDataset")
    registry.add("datasets", "aligned", "ganzoo_cyclegan.paired_data:AlignedDataset")
    registry.add("datasets", "shapes_pairs", "ganzoo_cyclegan.paired_data:ShapesPairsDataset")
    from ganzoo_cyclegan.pretrained import WEIGHTS  # plain data

    for name, spec in WEIGHTS.items():
        registry.add("pretrained", name, spec)
