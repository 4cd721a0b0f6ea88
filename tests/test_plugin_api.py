"""The declared plugin API (ganzoo/api.py): cheap to import, every name resolves, and the built-in plugins and the
example plugin import nothing else from ganzoo (nor each other)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import ganzoo.api

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ganzoo-example-plugin" / "ganzoo_example"
PACKAGES = sorted(p.parent for p in (ROOT / "plugins").glob("*/__init__.py")) + [EXAMPLE]
PACKAGE_NAMES = {p.name for p in PACKAGES}


def forbidden_imports(source: str, package: str) -> list[str]:
    """``line: module`` for every import in ``source`` (a module of plugin ``package``) of a ganzoo module other
    than ganzoo.api, or of another plugin package. Relative imports stay inside the package and are fine."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from ganzoo import api` names the module ganzoo.api; `from ganzoo import trainer` does not.
            modules = [f"ganzoo.{a.name}" for a in node.names] if node.module == "ganzoo" else [node.module]
        else:
            continue
        for module in modules:
            top = module.split(".")[0]
            if top == "ganzoo" and module != "ganzoo.api":
                found.append(f"{node.lineno}: {module}")
            elif top in PACKAGE_NAMES and top != package:
                found.append(f"{node.lineno}: {module}")
    return found


def plugin_modules() -> list:
    return [pytest.param(package.name, path, id=str(path.relative_to(ROOT)))
            for package in PACKAGES for path in sorted(package.rglob("*.py"))]


def test_the_builtin_plugins_and_the_example_are_all_scanned():
    assert {"ganzoo_stargan", "ganzoo_stargan_v2", "ganzoo_cyclegan", "ganzoo_example"} <= PACKAGE_NAMES
    scanned = {param.values[1] for param in plugin_modules()}
    assert all(package / "__init__.py" in scanned and package / "model.py" in scanned for package in PACKAGES)


@pytest.mark.parametrize("package, path", plugin_modules())
def test_a_plugin_module_imports_only_the_plugin_api(package, path):
    found = forbidden_imports(path.read_text(encoding="utf-8"), package)
    assert not found, f"{path.relative_to(ROOT)} imports outside ganzoo.api: {found}"


def test_the_import_check_catches_what_it_should():
    bad = (
        "import ganzoo\n"
        "import ganzoo.trainer\n"
        "from ganzoo import model\n"
        "from ganzoo.errors import DataError\n"
        "def f():\n"
        "    from ganzoo.plugins import get_registry\n"
        "from ganzoo_stargan.networks import Generator\n"
    )
    assert sorted(int(line.split(":")[0]) for line in forbidden_imports(bad, "ganzoo_cyclegan")) == [1, 2, 3, 4, 6, 7]
    good = ("from ganzoo.api import GANModel\nfrom ganzoo import api\nimport ganzoo.api\n"
            "from ganzoo_cyclegan.networks import init_normal\nfrom .data import x\nimport torch\n")
    assert forbidden_imports(good, "ganzoo_cyclegan") == []


def test_importing_the_api_and_hookimpl_does_not_import_torch():
    code = ("import sys\nimport ganzoo.api\nfrom ganzoo.api import hookimpl\n"
            "print([m for m in ('torch', 'torchvision', 'timm', 'datasets') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_every_name_in_all_resolves_and_is_listed():
    assert len(set(ganzoo.api.__all__)) == len(ganzoo.api.__all__)
    for name in ganzoo.api.__all__:
        assert getattr(ganzoo.api, name) is not None, name
    assert set(ganzoo.api.__all__) <= set(dir(ganzoo.api))
    from ganzoo.checkpoint import save_converted
    from ganzoo.model import GANModel
    from ganzoo.trainer import StepContext

    assert ganzoo.api.GANModel is GANModel and ganzoo.api.StepContext is StepContext
    assert ganzoo.api.save_converted is save_converted
    with pytest.raises(AttributeError, match="plugin API"):
        ganzoo.api.get_registry  # noqa: B018 - the registry is the core's, not the plugins'


def test_the_api_names_what_the_brief_promises():
    expected = {"hookimpl", "GANModel", "StepContext", "StrictModel", "OptimConfig", "ImageDataset", "frozen", "adam",
                "input_gradient", "differentiable_twice", "per_image", "save_converted", "layout_mismatch",
                "load_official_checkpoint", "GanzooError", "RecipeError", "DataError", "CheckpointError", "did_you_mean",
                "vanilla", "lsgan", "hinge", "wgan", "wgan_gp", "r1", "adversarial_loss", "AdversarialLossName",
                "StyleModel", "AttributeModel", "read_image", "to_tensor", "list_images"}
    assert expected <= set(ganzoo.api.__all__)


# --------------------------------------------------------------------------- what the API promises about models


def test_capabilities_are_protocols_the_families_satisfy():
    from ganzoo.api import AttributeModel, GANModel, StyleModel
    from ganzoo_cyclegan.model import CycleGAN
    from ganzoo_stargan.model import StarGAN
    from ganzoo_stargan_v2.model import StarGANv2

    assert issubclass(StarGANv2, StyleModel) and not issubclass(StarGANv2, AttributeModel)
    assert issubclass(StarGAN, AttributeModel) and not issubclass(StarGAN, StyleModel)
    assert not issubclass(CycleGAN, StyleModel) and not issubclass(CycleGAN, AttributeModel)
    assert not issubclass(GANModel, StyleModel)


def test_dataset_label_kind_reads_the_registered_dataset_class():
    from ganzoo.api import dataset_label_kind

    assert dataset_label_kind("shapes") == "one-hot"
    assert dataset_label_kind("celeba") == "attributes"
    assert dataset_label_kind("celeba_rafd") == "joint"
    assert dataset_label_kind("no_such_dataset") == "one-hot"


def test_recipe_source_is_public_and_not_a_recipe_key():
    from ganzoo.errors import RecipeError
    from ganzoo.recipe import load_recipe, recipe_from_dict

    recipe = load_recipe(ROOT / "recipes" / "cyclegan_shapes.yaml")
    assert recipe.source.endswith("cyclegan_shapes.yaml")
    assert "source" not in recipe.to_dict() and "_source" not in recipe.to_dict()
    recipe.source = "elsewhere.yaml"
    assert recipe.source == "elsewhere.yaml"
    with pytest.raises(RecipeError, match="source"):
        recipe_from_dict({"model": "cyclegan", "source": "x.yaml"}, check_data=False)


def test_label_groups_are_computed_once_per_dataset():
    from ganzoo.api import ShapesDataset

    dataset = ShapesDataset("train", 16, ["red", "blue"], num_train=6, num_val=2, seed=0)
    calls = []
    original = dataset.indices_by_label

    def counted():
        calls.append(1)
        return original()

    dataset.indices_by_label = counted
    groups = dataset.label_groups()
    assert dataset.label_groups() is groups and len(calls) == 1
    assert sorted(i for g in groups for i in g) == list(range(len(dataset)))
    assert all(dataset.labels[i] == label for label, g in enumerate(groups) for i in g)
