"""Plugins load through the `ganzoo` entry-point group, exactly as third-party ones would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ganzoo.errors import RegistryError
from ganzoo.registry import Registry

ROOT = Path(__file__).resolve().parents[1]


def fake_install(site: Path, dist: str, module: str, source: str, entry_name: str | None = None) -> None:
    """Lay out an installed distribution the way pip does: the module plus a *.dist-info with entry_points.txt."""
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[ganzoo]\n{entry_name or module} = {module}\n")
    (info / "RECORD").write_text("")


PLUGIN = '''
from ganzoo.hookspecs import hookimpl

@hookimpl
def ganzoo_register(registry):
    registry.add("datasets", "{name}", "ganzoo.data.shapes:ShapesDataset")
'''


def env_with(site: Path) -> dict:
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def test_third_party_plugin_is_discovered_from_its_dist_info(tmp_path, cli):
    fake_install(tmp_path, "ganzoo-thirdparty", "ganzoo_thirdparty", PLUGIN.format(name="my_shapes"))
    result = cli("list", "datasets", env=env_with(tmp_path))
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if "my_shapes" in l)
    assert "ganzoo_thirdparty (ganzoo-thirdparty)" in line
    assert "imagefolder" in result.stdout  # built-ins still there


def test_a_broken_plugin_is_reported_by_name_and_the_rest_works(tmp_path, cli):
    fake_install(tmp_path, "ganzoo-broken", "ganzoo_broken", "raise ImportError('needs libfoo')\n")
    result = cli("list", "models", env=env_with(tmp_path))
    assert result.returncode == 0
    assert "plugin ganzoo_broken failed to load" in result.stderr and "needs libfoo" in result.stderr
    assert "stargan_v2" in result.stdout


def test_a_name_clash_is_an_error_naming_both_plugins(tmp_path, cli):
    fake_install(tmp_path, "ganzoo-clash", "ganzoo_clash", PLUGIN.format(name="shapes"))
    result = cli("list", env=env_with(tmp_path))
    assert result.returncode == 2
    assert 'plugin "core"' in result.stderr and 'plugin "ganzoo_clash (ganzoo-clash)"' in result.stderr
    assert "Traceback" not in result.stderr


def test_registry_clash_and_did_you_mean_in_process():
    registry = Registry()
    registry.current_plugin = "a"
    registry.add("models", "gan", object())
    registry.current_plugin = "b"
    with pytest.raises(RegistryError, match='registered by both plugin "a" and plugin "b"'):
        registry.add("models", "gan", object())
    with pytest.raises(RegistryError, match='Did you mean "gan"'):
        registry.get("models", "gam")


def test_help_is_fast_and_does_not_import_torch():
    code = (
        "import sys, time; t = time.perf_counter();\n"
        "from typer.testing import CliRunner; from ganzoo.cli import app\n"
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('torch', 'timm', 'datasets', 'torchvision') if m in sys.modules]\n"
        "print(heavy, time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "[]", out
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ganzoo", "--help"], capture_output=True, check=True)
    assert time.perf_counter() - start < 3.0  # the budget is 0.5 s on a quiet machine; leave room for busy CI


def test_the_example_plugin_package_installs_and_trains(tmp_path, cli):
    """CONTRIBUTING.md's example package, installed for real with pip, shows up and trains."""
    site = tmp_path / "site"
    src = tmp_path / "src"
    shutil.copytree(ROOT / "examples" / "ganzoo-example-plugin", src)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(src)], check=True, capture_output=True)
    assert list(site.glob("ganzoo_example_plugin-*.dist-info/entry_points.txt"))
    env = env_with(site)
    listed = cli("list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert any("tiny_cgan" in l and "example (ganzoo-example-plugin)" in l for l in listed.stdout.splitlines())
    run = cli("run", str(src / "recipe.yaml"), "--out", str(tmp_path / "run"), "-q", env=env)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "run" / "checkpoints" / "step_00000004" / "generator.safetensors").is_file()
