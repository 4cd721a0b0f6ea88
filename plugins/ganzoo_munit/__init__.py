"""MUNIT (Huang et al., ECCV 2018): multimodal unsupervised image-to-image translation between two domains.

Content and style codes per image: random styles give diverse translations, a reference image's style gives
example-guided ones. Registered lazily: nothing here imports torch until a network, the model or the converter
is used.
"""

from ganzoo.api import hookimpl, package_recipes


@hookimpl
def ganzoo_register(registry) -> None:
    registry.add("generators", "munit.adain_generator", "ganzoo_munit.networks:AdaINGenerator")
    registry.add("discriminators", "munit.ms_discriminator", "ganzoo_munit.networks:MsImageDis")
    registry.add("models", "munit", "ganzoo_munit.model:MUNIT")
    registry.add("converters", "munit", "ganzoo_munit.convert:convert_munit")
    for name, path in package_recipes(__name__).items():
        registry.add("recipes", name, path)
    from ganzoo_munit.pretrained import WEIGHTS  # plain data

    for name, spec in WEIGHTS.items():
        registry.add("pretrained", name, spec)
