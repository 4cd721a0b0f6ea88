"""Recipes by name: ``ganzoo run quickstart`` works from a plain install as ``ganzoo run recipes/quickstart.yaml``
does in a checkout.

Recipes are a registry kind. The core registers the repository's top-level ``recipes/`` folder, which the
wheel ships as ``ganzoo/recipes``; a plugin registers the YAML files it ships as package data the same way
(:func:`package_recipes`). A name is a file's stem. A path that exists always wins over a name.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ganzoo.errors import RecipeError, did_you_mean

SUFFIXES = (".yaml", ".yml")


def shipped_folder() -> Path | None:
    """ganzoo's own recipes: ``ganzoo/recipes`` in an installed wheel, the top-level ``recipes/`` in a checkout."""
    installed = Path(str(resources.files("ganzoo"))) / "recipes"
    if installed.is_dir():
        return installed
    checkout = Path(__file__).resolve().parents[1] / "recipes"
    return checkout if checkout.is_dir() else None


def folder_recipes(folder: Path | None) -> dict[str, Path]:
    """name -> file for every recipe directly in ``folder``."""
    if folder is None or not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix in SUFFIXES and p.is_file()}


def package_recipes(package: str, folder: str = "recipes") -> dict[str, Path]:
    """name -> file for the recipes a plugin ships in ``<package>/<folder>/`` (package data)::

        for name, path in package_recipes(__name__).items():
            registry.add("recipes", name, path)
    """
    return folder_recipes(Path(str(resources.files(package))) / folder)


def looks_like_name(text: str) -> bool:
    return "/" not in text and "\\" not in text and Path(text).suffix in ("", *SUFFIXES)


def find_recipe(text: str | Path) -> Path:
    """The recipe file ``text`` names: an existing path, else a registered recipe name (``quickstart``)."""
    path = Path(text)
    if path.is_file() or not looks_like_name(str(text)):
        return path
    from ganzoo.plugins import get_registry

    registry = get_registry()
    name = path.stem if path.suffix in SUFFIXES else str(text)
    names = registry.names("recipes")
    if name in names:
        return Path(registry.get("recipes", name))
    if path.suffix in SUFFIXES:  # a file name that is missing: the usual "does not exist" sentence
        return path
    raise RecipeError(f'"{text}" is neither a recipe file nor a shipped recipe name.{did_you_mean(name, names)} '
                      "See `ganzoo list recipes`.")


def recipe_model(path: Path) -> str:
    """The ``model:`` a recipe file trains (following ``base:``), or "?" when it cannot be read."""
    from ganzoo.recipe import _load_with_bases

    try:
        model = _load_with_bases(Path(path)).get("model")
    except RecipeError:
        return "?"
    return model if isinstance(model, str) else "?"
