"""CycleGAN (Zhu et al., ICCV 2017): unpaired translation between two domains with cycle consistency.

Also home of the networks CycleGAN and pix2pix share (ResNet and U-Net
generators, PatchGAN and pixel discriminators). Registered lazily: nothing
here imports torch until a network, dataset or the model is used.
"""

from ganzoo.hookspecs import hookimpl


@hookimpl
def ganzoo_register(registry) -> None:
    registry.add("generators", "cyclegan.resnet_generator", "ganzoo_cyclegan.networks:ResnetGenerator")
    registry.add("generators", "cyclegan.unet_generator", "ganzoo_cyclegan.networks:UnetGenerator")
    registry.add("discriminators", "cyclegan.nlayer_discriminator", "ganzoo_cyclegan.networks:NLayerDiscriminator")
    registry.add("discriminators", "cyclegan.pixel_discriminator", "ganzoo_cyclegan.networks:PixelDiscriminator")
    registry.add("losses", "cyclegan.gan_loss", "ganzoo_cyclegan.model:gan_loss")
    registry.add("losses", "cyclegan.gradient_penalty", "ganzoo_cyclegan.model:gradient_penalty")
    registry.add("models", "cyclegan", "ganzoo_cyclegan.model:CycleGAN")
    registry.add("converters", "cyclegan", "ganzoo_cyclegan.convert:convert_cyclegan")
    registry.add("datasets", "unaligned", "ganzoo_cyclegan.data:UnalignedDataset")
