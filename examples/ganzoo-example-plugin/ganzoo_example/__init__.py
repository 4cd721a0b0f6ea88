"""A minimal ganzoo plugin: a ``gradients`` dataset and a ``tiny_cgan`` model."""

from ganzoo.api import hookimpl, package_recipes


@hookimpl
def ganzoo_register(registry) -> None:
    # Strings are imported only when used, so `ganzoo --help` and `ganzoo list` stay fast.
    registry.add("datasets", "gradients", "ganzoo_example.data:GradientsDataset")
    registry.add("generators", "tiny_cgan.generator", "ganzoo_example.model:TinyGenerator")
    registry.add("discriminators", "tiny_cgan.discriminator", "ganzoo_example.model:TinyDiscriminator")
    registry.add("models", "tiny_cgan", "ganzoo_example.model:TinyConditionalGAN")
    # Recipes shipped as package data (ganzoo_example/recipes/*.yaml), by name: `ganzoo run tiny_cgan_gradients`.
    for name, path in package_recipes(__name__).items():
        registry.add("recipes", name, path)
