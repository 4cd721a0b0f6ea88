"""The plugin API: everything a ganzoo plugin may import, and nothing else.

A plugin (a built-in family or a third party's) imports from this module only::

    from ganzoo.api import hookimpl                       # in the package's __init__.py
    from ganzoo.api import GANModel, StrictModel, frozen  # in its model module

Every other ``ganzoo.*`` module is the core's own business and may change
between releases; the names in :data:`__all__` are the contract. Importing this
module is cheap: :func:`hookimpl` and the errors are imported at once (a
plugin's ``__init__`` runs when the CLI starts, which must not import torch),
everything else on first use.

What is here:

- the hook: :func:`hookimpl`
- models: :class:`GANModel`, the step context :class:`StepContext` (``ctx`` of ``train_step``), the training
  helpers :func:`frozen`, :func:`adam`, :func:`input_gradient`, :func:`differentiable_twice`, :func:`per_image`,
  :func:`dataset_label_kind`, and the capabilities :class:`StyleModel`, :class:`AttributeModel`, :class:`AnySizeModel`,
  :class:`ExportableModel`
- export (``ganzoo export``): :class:`ExportGraph` and :class:`TensorSpec`, what ``export_graphs()`` returns
- recipe schemas: :class:`StrictModel`, :class:`OptimConfig` (and :class:`Recipe` for annotations)
- shared losses (:mod:`ganzoo.losses`): the adversarial losses and :class:`AdversarialLoss`,
  :data:`AdversarialLossName`, :func:`adversarial_loss`, and the penalties :func:`wgan_gp`, :func:`r1`
- data: :class:`ImageDataset`, :func:`balanced_index`, the image helpers, the image-folder and shapes datasets
- official checkpoints: :func:`load_official_checkpoint`, :func:`layout_mismatch`, :func:`save_converted`
- what a family ships: :class:`PretrainedEntry` (``pretrained`` registry entries), :func:`package_recipes`
  (its recipes, to register under ``recipes``), :class:`Logger` (``loggers`` registry entries, ``train.loggers``)
- errors: :class:`GanzooError` and its kinds, :func:`did_you_mean`
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ganzoo.errors import (
    CheckpointError,
    DataError,
    GanzooError,
    RecipeError,
    RegistryError,
    SplitMissing,
    TrainingError,
    did_you_mean,
)
from ganzoo.hookspecs import hookimpl

#: name -> the core module that defines it; imported on first access (these import torch or pydantic)
_LAZY: dict[str, str] = {
    **dict.fromkeys(("GANModel", "frozen", "adam", "input_gradient", "differentiable_twice", "per_image",
                     "dataset_label_kind", "StyleModel", "AttributeModel", "AnySizeModel", "ExportableModel"), "ganzoo.model"),
    **dict.fromkeys(("ExportGraph", "TensorSpec"), "ganzoo.export"),
    "StepContext": "ganzoo.step_context",
    **dict.fromkeys(("StrictModel", "OptimConfig", "Recipe"), "ganzoo.recipe"),
    **dict.fromkeys(("AdversarialLoss", "AdversarialLossName", "adversarial_loss", "adversarial_loss_names",
                     "vanilla", "lsgan", "hinge", "wgan", "wgan_gp", "r1"), "ganzoo.losses"),
    **dict.fromkeys(("ImageDataset", "balanced_index"), "ganzoo.data.base"),
    **dict.fromkeys(("IMAGE_EXTENSIONS", "list_images", "read_image", "to_tensor", "resize", "center_crop",
                     "random_crop", "random_resized_crop", "hflip"), "ganzoo.data.images"),
    **dict.fromkeys(("ImageFolderDataset", "header_problem"), "ganzoo.data.imagefolder"),
    **dict.fromkeys(("ShapesDataset", "FAMILY_HUES"), "ganzoo.data.shapes"),
    **dict.fromkeys(("load_official_checkpoint", "layout_mismatch", "save_converted"), "ganzoo.checkpoint"),
    "PretrainedEntry": "ganzoo.zoo",
    "package_recipes": "ganzoo.recipe_names",
    "Logger": "ganzoo.loggers",
}

__all__ = [
    "hookimpl",
    "GanzooError", "RecipeError", "RegistryError", "DataError", "SplitMissing", "CheckpointError", "TrainingError",
    "did_you_mean",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ganzoo.api' has no attribute {name!r}; the plugin API is ganzoo.api.__all__")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and editors see; at run time these come through __getattr__
    from ganzoo.checkpoint import layout_mismatch, load_official_checkpoint, save_converted
    from ganzoo.data.base import ImageDataset, balanced_index
    from ganzoo.data.imagefolder import ImageFolderDataset, header_problem
    from ganzoo.data.images import (
        IMAGE_EXTENSIONS,
        center_crop,
        hflip,
        list_images,
        random_crop,
        random_resized_crop,
        read_image,
        resize,
        to_tensor,
    )
    from ganzoo.data.shapes import FAMILY_HUES, ShapesDataset
    from ganzoo.losses import (
        AdversarialLoss,
        AdversarialLossName,
        adversarial_loss,
        adversarial_loss_names,
        hinge,
        lsgan,
        r1,
        vanilla,
        wgan,
        wgan_gp,
    )
    from ganzoo.export import ExportGraph, TensorSpec
    from ganzoo.loggers import Logger
    from ganzoo.recipe_names import package_recipes
    from ganzoo.zoo import PretrainedEntry
    from ganzoo.model import (
        AnySizeModel,
        AttributeModel,
        ExportableModel,
        GANModel,
        StyleModel,
        adam,
        dataset_label_kind,
        differentiable_twice,
        frozen,
        input_gradient,
        per_image,
    )
    from ganzoo.recipe import OptimConfig, Recipe, StrictModel
    from ganzoo.step_context import StepContext
