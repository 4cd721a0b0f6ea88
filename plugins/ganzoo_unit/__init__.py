"""UNIT (Liu, Breuel, Kautz, NeurIPS 2017): unsupervised image-to-image translation through a shared latent space.

Registered lazily: nothing here imports torch until a network, the model or the converter is used.
"""

from ganzoo.api import hookimpl


@hookimpl
def ganzoo_register(registry) -> None:
    from ganzoo.api import package_recipes

    registry.add("generators", "unit.vae_generator", "ganzoo_unit.networks:VAEGenerator")
    registry.add("discriminators", "unit.ms_discriminator", "ganzoo_unit.networks:MultiScaleDiscriminator")
    registry.add("models", "unit", "ganzoo_unit.model:UNIT")
    registry.add("converters", "unit", "ganzoo_unit.convert:convert_unit")
    for name, path in package_recipes(__name__).items():
        registry.add("recipes", name, path)
    from ganzoo_unit.pretrained import WEIGHTS  # plain data

    for name, spec in WEIGHTS.items():
        registry.add("pretrained", name, spec)
