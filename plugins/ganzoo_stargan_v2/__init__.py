"""StarGAN v2 (Choi et al., CVPR 2020): diverse image synthesis for multiple domains.

Registered lazily: nothing here imports torch until a network or the model is used.
"""

from ganzoo.api import hookimpl


@hookimpl
def ganzoo_register(registry) -> None:
    registry.add("generators", "stargan_v2.generator", "ganzoo_stargan_v2.networks:Generator")
    registry.add("generators", "stargan_v2.mapping_network", "ganzoo_stargan_v2.networks:MappingNetwork")
    registry.add("generators", "stargan_v2.style_encoder", "ganzoo_stargan_v2.networks:StyleEncoder")
    registry.add("discriminators", "stargan_v2.discriminator", "ganzoo_stargan_v2.networks:Discriminator")
    registry.add("models", "stargan_v2", "ganzoo_stargan_v2.model:StarGANv2")
    registry.add("converters", "stargan_v2", "ganzoo_stargan_v2.convert:convert_to_folder")
    registry.add("converters", "stargan_v2_fan", "ganzoo_stargan_v2.convert:convert_fan_to_folder")
    from ganzoo_stargan_v2.pretrained import WEIGHTS  # plain data

    for name, spec in WEIGHTS.items():
        registry.add("pretrained", name, spec)


@hookimpl
def ganzoo_register_commands(app) -> None:
    # `ganzoo align-faces`: faces warped to the CelebA-HQ layout for the CelebA-HQ model (official --mode align)
    from ganzoo_stargan_v2.commands import register_commands

    register_commands(app)
