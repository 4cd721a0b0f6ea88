"""DiscoGAN (Kim et al., ICML 2017): two generators discover a relation between two unpaired domains.

Each generator is trained adversarially with feature matching and to be undone by the other (reconstruction),
following SKTBrain/DiscoGAN. Registered lazily: nothing here imports torch until a network or the model is used.
The official repository publishes no trained weights, so this plugin has no converter or pretrained entries.
"""

from ganzoo.api import hookimpl, package_recipes


@hookimpl
def ganzoo_register(registry) -> None:
    registry.add("generators", "discogan.generator", "ganzoo_discogan.networks:Generator")
    registry.add("discriminators", "discogan.discriminator", "ganzoo_discogan.networks:Discriminator")
    registry.add("models", "discogan", "ganzoo_discogan.model:DiscoGAN")
    # discogan_shapes (CPU), discogan_edges2shoes, discogan_celeba_male, discogan_celeba_hair (official settings)
    for name, path in package_recipes(__name__).items():
        registry.add("recipes", name, path)


@hookimpl
def ganzoo_register_commands(app) -> None:
    from ganzoo_discogan.folders import register_commands

    register_commands(app)
