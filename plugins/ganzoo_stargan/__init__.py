"""StarGAN v1 (Choi et al., CVPR 2018): one generator for multi-domain image-to-image translation.

Registered lazily: nothing here imports torch until a network, dataset or the model is used.
"""

from ganzoo.api import hookimpl


@hookimpl
def ganzoo_register(registry) -> None:
    registry.add("generators", "stargan.generator", "ganzoo_stargan.networks:Generator")
    registry.add("discriminators", "stargan.discriminator", "ganzoo_stargan.networks:Discriminator")
    registry.add("losses", "stargan.gradient_penalty", "ganzoo_stargan.model:gradient_penalty")
    registry.add("models", "stargan", "ganzoo_stargan.model:StarGAN")
    registry.add("converters", "stargan", "ganzoo_stargan.convert:convert")
    registry.add("datasets", "celeba", "ganzoo_stargan.data:CelebADataset")
    registry.add("datasets", "rafd", "ganzoo_stargan.data:RaFDDataset")
    registry.add("datasets", "celeba_rafd", "ganzoo_stargan.data:CelebARaFDDataset")
    from ganzoo_stargan.pretrained import WEIGHTS  # plain data

    for name, spec in WEIGHTS.items():
        registry.add("pretrained", name, spec)
