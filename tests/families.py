"""Every registered model family, as the tests see it: generated from the registry and the families' declarations
(``GANModel`` class arguments ``recipes`` and ``tiny``), never from a hand-written list.

A family installed from anywhere (built in, a third-party package) is covered by tests/test_contract.py, the bench,
fuzz and security tests without editing them. What a family must declare for that is checked here, and a family
that does not declare it gets one clear sentence (:class:`NotDeclared`), which the contract tests turn into a failure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: What every test run adds to a tiny recipe: CPU, fp32, no workers, no compile, no samples.
TEST_SETTINGS = ["train.device=cpu", "train.precision=fp32", "train.compile=false", "train.channels_last=false",
                 "train.sample_every=0", "data.num_workers=0"]


class NotDeclared(Exception):
    """A family lacks a declaration the generated tests need; the message says which and how to add it."""


def registry():
    from ganzoo.plugins import get_registry

    return get_registry()


def model_names() -> list[str]:
    """Every registered model, built-in or third-party (for ``pytest.mark.parametrize`` at collection time)."""
    return sorted(registry().names("models"))


def declared_model_names() -> list[str]:
    """The models whose tiny recipe loads (for tests that vary it; the contract tests fail the others)."""
    names = []
    for name in model_names():
        try:
            tiny_recipe(name)
        except NotDeclared:
            continue
        names.append(name)
    return names


def converter_names() -> list[str]:
    return sorted(registry().names("converters"))


def model_class(name: str):
    return registry().get("models", name)


def _where(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def small_recipe(name: str) -> Path:
    """The file of ``name``'s declared "small" recipe."""
    from ganzoo.errors import GanzooError
    from ganzoo.recipe_names import find_recipe

    cls = model_class(name)
    small = (cls.recipes or {}).get("small")
    if not small:
        raise NotDeclared(
            f'model "{name}" ({_where(cls)}) declares no recipes["small"]: give the class a recipe that trains on a CPU, '
            f'e.g. class {cls.__name__}(GANModel, recipes={{"small": "<recipe name>"}}, tiny={{...}}), and register the '
            "recipe (ganzoo.recipe_names.package_recipes) so every generated test can train it.")
    try:
        path = find_recipe(small)
    except GanzooError as exc:
        raise NotDeclared(f'model "{name}" declares recipes["small"] = "{small}", which does not resolve: {exc}') from None
    if not path.is_file():
        raise NotDeclared(f'model "{name}" declares recipes["small"] = "{small}", and {path} is not a file.')
    return path


def tiny_overrides(name: str) -> list[str]:
    """``name``'s ``tiny`` declaration as ``--set`` overrides (values as YAML, which JSON is)."""
    cls = model_class(name)
    tiny = cls.tiny or {}
    if not tiny:
        raise NotDeclared(
            f'model "{name}" ({_where(cls)}) declares no tiny overrides: give the class tiny={{"data.image_size": 16, '
            '"networks.<role>.<width>": 8, ...}} that shrink its "small" recipe to test size (seconds per step on a CPU).')
    return [f"{key}={json.dumps(value)}" for key, value in tiny.items()]


def tiny_recipe(name: str, *extra: str, settings: bool = True):
    """``name``'s small recipe with its tiny overrides (and the test settings, then ``extra``), validated."""
    from ganzoo.errors import RecipeError
    from ganzoo.recipe import load_recipe

    path = small_recipe(name)
    overrides = [*tiny_overrides(name), *(TEST_SETTINGS if settings else ()), *extra]
    try:
        recipe = load_recipe(path, overrides)
    except RecipeError as exc:
        raise NotDeclared(f'model "{name}": its small recipe {path.name} with its tiny overrides does not load: {exc}') from None
    if recipe.model != name:
        raise NotDeclared(f'model "{name}" declares recipes["small"] = {path.name}, which trains "{recipe.model}" instead.')
    return recipe


def tiny_doc(name: str) -> dict[str, Any]:
    """The tiny recipe as a document: ``base:`` the small recipe (absolute path), the tiny overrides on top."""
    from ganzoo.recipe import apply_overrides

    return apply_overrides({"base": str(small_recipe(name).resolve())}, tiny_overrides(name))


def network_settings(name: str) -> dict[str, Any]:
    """The tiny recipe's network arguments (what the recipe and the model's defaults give, not the derived ones),
    as dotted key -> value."""
    recipe = tiny_recipe(name, settings=False)
    return {f"networks.{role}.{key}": value for role, kwargs in sorted(recipe.networks.items())
            for key, value in kwargs.items()}


def network_size_keys(name: str) -> list[tuple[str, ...]]:
    """Integer network arguments of the tiny recipe (widths, depths, block counts): what fuzzing varies."""
    return [tuple(key.split(".")) for key, value in network_settings(name).items()
            if isinstance(value, int) and not isinstance(value, bool)]


def bench_settings(name: str) -> tuple[int, list[str]]:
    """Image size and ``--set`` overrides that shrink ``name``'s bench target (its official recipe, else its small one)
    to the tiny recipe's networks and image size."""
    recipe = tiny_recipe(name, settings=False)
    return recipe.data.image_size, [f"{key}={json.dumps(value)}" for key, value in network_settings(name).items()]
