"""ganzoo's core plugin: the built-in datasets, metrics, shared losses, loggers, recipes and commands (compare, bench, export, ...).

Loaded through the ``ganzoo`` entry-point group like every other plugin.
"""

from ganzoo.hookspecs import hookimpl
from ganzoo.recipe_names import folder_recipes, shipped_folder


@hookimpl
def ganzoo_register(registry) -> None:
    registry.add("datasets", "shapes", "ganzoo.data.shapes:ShapesDataset")
    registry.add("datasets", "imagefolder", "ganzoo.data.imagefolder:ImageFolderDataset")
    registry.add("datasets", "hub", "ganzoo.data.hub:HubImageDataset")
    for name, cls in (("fid", "FID"), ("kid", "KID"), ("lpips", "LPIPSDiversity"), ("domain_accuracy", "DomainAccuracy"),
                      ("content", "ContentPreservation"), ("params", "Params"), ("flops", "FLOPs"),
                      ("throughput", "Throughput")):
        registry.add("metrics", name, f"ganzoo.metrics.standard:{cls}")
    # Adversarial losses under the names recipes choose them by (losses.gan_mode), then the gradient penalties.
    for name, obj in (("vanilla", "VANILLA"), ("lsgan", "LSGAN"), ("hinge", "HINGE"), ("wgangp", "WGANGP"),
                      ("wgan_gp_penalty", "wgan_gp"), ("r1_penalty", "r1")):
        registry.add("losses", name, f"ganzoo.losses:{obj}")
    for name, cls in (("jsonl", "JsonlLogger"), ("tensorboard", "TensorBoardLogger"), ("wandb", "WandbLogger"),
                      ("mlflow", "MlflowLogger")):
        registry.add("loggers", name, f"ganzoo.loggers:{cls}")
    for name, path in folder_recipes(shipped_folder()).items():
        registry.add("recipes", name, path)


@hookimpl
def ganzoo_register_commands(app) -> None:
    from ganzoo.commands import bench, compare, demo, export, make_shapes, train_classifier

    for module in (compare, bench, train_classifier, make_shapes, export, demo):
        module.register_commands(app)
