"""One family, one package: a model family that ganzoo has never heard of, added by installing one package.

The test writes a throw-away distribution, ``ganzoo-quillgan``, into a temporary folder: its own
pyproject.toml with a ``ganzoo`` entry point, a networks module, a model module whose GANModel subclass
declares paper / citation / recipes / tiny, a recipe shipped as package data and registered by name, a
converter and one pretrained entry pointing at a local "official release" (a file:// URL), and one CLI
command. It is really pip-installed (into a --target folder, found through PYTHONPATH), then used only
through the real CLI in subprocesses: listed, trained, compared, benchmarked, pulled and translated,
pushed with its own citation in the model card, and covered by the registry-generated contract tests.
Nothing under ganzoo/ names it.

The test process itself never imports the package (its registry stays as it was for the other tests).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FAMILY = "quillgan"  # a name nothing in ganzoo/ may mention
PACKAGE = f"ganzoo_{FAMILY}"
DIST = f"ganzoo-{FAMILY}"
RECIPE = f"{FAMILY}_tiny"
PRETRAINED = f"{FAMILY}.shapes16"
COMMAND = "quill-hello"
CITATION = ("@article{quill2031, title={QuillGAN: A Throw-Away Family for Testing ganzoo Plugins}, "
            "author={Quill, Ada}, journal={Journal of Plugin Tests}, year={2031}}")
DOMAINS = ["red", "green", "blue"]

PYPROJECT = f"""\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "{DIST}"
version = "0.0.1"
requires-python = ">=3.10"
dependencies = ["ganzoo"]

[project.entry-points.ganzoo]
{FAMILY} = "{PACKAGE}"

[tool.hatch.build.targets.wheel]
packages = ["{PACKAGE}"]
"""

INIT = f'''\
"""QuillGAN: a throw-away model family, registered the way every ganzoo plugin registers."""

from ganzoo.hookspecs import hookimpl


@hookimpl
def ganzoo_register(registry) -> None:
    from ganzoo.recipe_names import package_recipes

    from {PACKAGE}.pretrained import WEIGHTS

    registry.add("generators", "{FAMILY}.generator", "{PACKAGE}.networks:Generator")
    registry.add("discriminators", "{FAMILY}.discriminator", "{PACKAGE}.networks:Discriminator")
    registry.add("models", "{FAMILY}", "{PACKAGE}.model:QuillGAN")
    registry.add("converters", "{FAMILY}", "{PACKAGE}.convert:convert")
    for name, path in package_recipes(__name__).items():
        registry.add("recipes", name, path)
    for name, spec in WEIGHTS.items():
        registry.add("pretrained", name, spec)


@hookimpl
def ganzoo_register_commands(app) -> None:
    @app.command("{COMMAND}")
    def hello(name: str = "world"):
        """Say hello from the {FAMILY} plugin."""
        print(f"{FAMILY} says hello to {{name}}")
'''

NETWORKS = '''\
"""A conditional generator (the target domain as an embedded colour plane) and a per-domain critic."""

import torch
from torch import nn


class Generator(nn.Module):
    def __init__(self, num_domains: int = 3, width: int = 8):
        super().__init__()
        self.embed = nn.Embedding(num_domains, 3)
        self.body = nn.Sequential(nn.Conv2d(6, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 3, 3, padding=1), nn.Tanh())

    def forward(self, x, y):
        label = self.embed(y)[:, :, None, None].expand_as(x)
        return self.body(torch.cat([x, label], 1))


class Discriminator(nn.Module):
    def __init__(self, num_domains: int = 3, width: int = 8):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(width, num_domains, 4, 2, 1))

    def forward(self, x, y):
        return self.body(x).mean((2, 3)).gather(1, y[:, None]).squeeze(1)
'''

MODEL = f'''\
"""QuillGAN's training algorithm: least-squares GAN, generator conditioned on the target domain."""

import torch
import torch.nn.functional as F

from ganzoo.model import GANModel, frozen
from ganzoo.recipe import StrictModel


class QuillLosses(StrictModel):
    adv: float = 1.0


class QuillGAN(
    GANModel,
    paper="Quill, QuillGAN: A Throw-Away Family for Testing ganzoo Plugins, JPT 2031",
    citation={CITATION!r},
    license="mit",
    recipes={{"small": "{RECIPE}", "official": "{RECIPE}"}},
    tiny={{"data.image_size": 16, "data.batch_size": 2, "data.num_train": 4, "data.num_val": 2,
          "networks.generator.width": 4, "networks.discriminator.width": 4}},
):
    """QuillGAN: one small conditional generator for k domains."""

    network_roles = {{"generator": "{FAMILY}.generator", "discriminator": "{FAMILY}.discriminator"}}
    derived_network_args = {{"generator": ("num_domains",), "discriminator": ("num_domains",)}}
    LossConfig = QuillLosses

    def derived_kwargs(self, role):
        return {{"num_domains": len(self.domains)}}

    def train_step(self, batch, step, ctx):
        G, D = self.nets["generator"], self.nets["discriminator"]
        x, y = batch["x"], batch["y"]
        target = torch.randint(0, len(self.domains), y.shape, device=y.device)
        fake = G(x, target)
        ones, zeros = torch.ones_like(y, dtype=x.dtype), torch.zeros_like(y, dtype=x.dtype)
        d_loss = F.mse_loss(D(x, y), ones) + F.mse_loss(D(fake.detach(), target), zeros)
        ctx.optimize(d_loss, "discriminator")
        with frozen(D):
            g_loss = self.losses.adv * F.mse_loss(D(fake, target), ones)
        ctx.optimize(g_loss, "generator")
        return {{"D": d_loss.detach(), "G": g_loss.detach()}}

    @torch.no_grad()
    def translate(self, images, target, *, reference=None, z=None, generator=None):
        return self.inference_nets()["generator"](images, target)
'''

CONVERT = f'''\
"""The "official release" of QuillGAN is a bare generator state dict in safetensors."""

from pathlib import Path

from safetensors.torch import load_file

from ganzoo.checkpoint import save_converted


def convert(inputs, out_dir, *, domains=None, image_size=16, **_):
    state = load_file(str(Path(inputs[0])))
    width = int(state["body.0.weight"].shape[0])
    return save_converted("{FAMILY}", out_dir, domains=list(domains or {DOMAINS!r}),
                          recipe={{"networks": {{"generator": {{"width": width}}}},
                                  "data": {{"name": "shapes", "image_size": image_size}}}},
                          state_dicts={{"generator": state}})
'''

RECIPE_YAML = f"""\
# QuillGAN on the built-in shapes set, test-sized.
model: {FAMILY}
networks: {{generator: {{width: 8}}, discriminator: {{width: 8}}}}
data: {{name: shapes, image_size: 16, domains: [red, green, blue], batch_size: 2, num_train: 8, num_val: 2}}
train: {{steps: 2, checkpoint_every: 2, sample_every: 2, log_every: 1, seed: 0}}
"""


def pretrained_module(url: str, sha256: str) -> str:
    weights = {PRETRAINED: {"description": "QuillGAN, shapes 16x16 (a local stand-in for an official release).",
                            "url": url, "sha256": sha256, "converter": FAMILY,
                            "options": {"domains": DOMAINS, "image_size": 16}, "license": "mit",
                            "upstream": "https://example.invalid/quillgan"}}
    return f'"""Named weight sets of QuillGAN (plain data)."""\n\nWEIGHTS = {weights!r}\n'


def write_release(networks_py: Path, target: Path) -> str:
    """The "official release": a generator's weights, made by the package's own networks module (loaded from
    its file, so this process never imports the package). Returns the file's sha256."""
    import torch
    from safetensors.torch import save_file

    spec = importlib.util.spec_from_file_location(f"_{FAMILY}_networks_for_release", networks_py)
    networks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(networks)
    torch.manual_seed(7)
    generator = networks.Generator(num_domains=len(DOMAINS), width=8)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in generator.state_dict().items()}, str(target))
    return hashlib.sha256(target.read_bytes()).hexdigest()


class Family:
    def __init__(self, root: Path, site: Path, release: Path):
        self.root, self.site, self.release = root, site, release
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                    "OMP_NUM_THREADS": "1", "COLUMNS": "200", "HF_HOME": str(root / "hf"),
                    "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TORCH_HOME": str(root / "torch")}
        if self.env.pop("PYTHONDONTWRITEBYTECODE", None):
            # Without bytecode every process compiles torch's sources again (8 s of its 13 s start on 2 cores):
            # the first CLI call writes it here and the others read it. Nothing is written next to the sources.
            self.env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")

    def cli(self, *args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "ganzoo", *args], capture_output=True, text=True,
                                env={**self.env, **(env or {})}, cwd=self.root, timeout=timeout)
        return result

    def ok(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        result = self.cli(*args, env=env)
        assert result.returncode == 0, f"ganzoo {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        assert "failed to load" not in result.stderr, result.stderr
        return result


@pytest.fixture(scope="module")
def family(tmp_path_factory) -> Family:
    """Write the package, make its release file, and pip-install it into a --target folder (once)."""
    root = tmp_path_factory.mktemp("new-family")
    pkg = root / DIST
    code = pkg / PACKAGE
    (code / "recipes").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(PYPROJECT)
    (code / "__init__.py").write_text(INIT)
    (code / "networks.py").write_text(NETWORKS)
    (code / "model.py").write_text(MODEL)
    (code / "convert.py").write_text(CONVERT)
    (code / "recipes" / f"{RECIPE}.yaml").write_text(RECIPE_YAML)
    release = root / "release" / "quillgan_shapes16_G.safetensors"
    digest = write_release(code / "networks.py", release)
    (code / "pretrained.py").write_text(pretrained_module(release.as_uri(), digest))

    site = root / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                                "--no-index", "--disable-pip-version-check", "--target", str(site), str(pkg)],
                               capture_output=True, text=True, timeout=300, cwd=root)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (site / PACKAGE / "recipes" / f"{RECIPE}.yaml").is_file()  # package data shipped in the wheel
    assert list(site.glob(f"{PACKAGE.replace('-', '_')}-*.dist-info/entry_points.txt"))
    shutil.rmtree(pkg)  # only the installed copy remains
    return Family(root, site, release)


@pytest.fixture(scope="module")
def trained(family) -> Path:
    """``ganzoo run <its recipe name>``: two steps, from the recipe shipped inside the package."""
    run = family.root / "run"
    family.ok("run", RECIPE, "--set", "train.steps=2", "--out", str(run), "-q")
    return run


def test_it_is_listed_with_its_plugin_and_its_command_runs(family):
    listed = family.ok("list").stdout
    plugin = f"{FAMILY} ({DIST})"
    rows = {tuple(line.rstrip().split(None, 2)) for line in listed.splitlines() if FAMILY in line}
    for kind, name in (("models", FAMILY), ("generators", f"{FAMILY}.generator"), ("discriminators", f"{FAMILY}.discriminator"),
                       ("converters", FAMILY), ("recipes", RECIPE)):
        assert (kind, name, plugin) in rows, listed

    zoo = family.ok("list", "--pretrained").stdout
    row = next(line for line in zoo.splitlines() if line.startswith(PRETRAINED))
    assert plugin in row and "mit" in row and f"{FAMILY} converter" in row, zoo

    helped = family.ok("--help").stdout
    assert COMMAND in helped and f"Say hello from the {FAMILY} plugin" in helped, helped
    assert family.ok(COMMAND, "--name", "tests").stdout.strip() == f"{FAMILY} says hello to tests"


def test_its_recipe_trains_by_name(trained):
    assert json.loads((trained / "latest.json").read_text())["step"] == 2
    config = json.loads(next(trained.glob("**/config.json")).read_text())
    assert config["model"] == FAMILY and config["domains"] in (DOMAINS, sorted(DOMAINS))


def test_it_compares_against_a_builtin_family(family):
    data = family.root / "shapes"
    family.ok("make-shapes", str(data), "--domains", "red,blue", "--img-size", "16", "--train", "8", "--val", "2")
    out = family.root / "compare"
    result = family.ok("compare", FAMILY, "stargan", "--data", str(data), "--steps", "2", "--img-size", "16",
                       "--metrics", "params,content", "--num-val", "2", "--out", str(out), "-q")
    report = json.loads((out / "compare.json").read_text())
    assert set(report["models"]) == {FAMILY, "stargan"}
    ours = report["models"][FAMILY]
    assert (ours["generators"], ours["models"]) == (1, 1)
    assert ours["eval"]["metrics"]["params"]["values"]["params/inference"] > 0
    assert ours["eval"]["metrics"]["content"]["values"]
    assert FAMILY in (out / "compare.md").read_text() and FAMILY in result.stdout


def test_it_benchmarks_by_family_name(family):
    out = family.root / "bench.json"
    family.ok("bench", FAMILY, "--steps", "1", "--warmup", "0", "--json", str(out))
    result = json.loads(out.read_text())
    assert result["model"] == FAMILY and result["train_img_per_s"] > 0 and result["params"]["generator"] > 0
    assert Path(result["recipe"]) == family.site / PACKAGE / "recipes" / f"{RECIPE}.yaml"  # its official recipe, by name


def test_its_pretrained_release_is_pulled_converted_and_translates(family):
    pulled = family.ok("pull", PRETRAINED, env={"HF_HUB_OFFLINE": "0"})
    folder = Path(pulled.stdout.strip().splitlines()[-1])
    assert folder.is_relative_to(family.root / "hf") and (folder / "config.json").is_file()
    source = json.loads((folder / "source.json").read_text())
    assert source["url"] == family.release.as_uri() and source["converter"] == FAMILY
    from safetensors.torch import load_file

    release, converted = load_file(str(family.release)), load_file(str(folder / "generator.safetensors"))
    assert release.keys() == converted.keys() and all((release[k] == converted[k]).all() for k in release)
    card = (folder / "README.md").read_text()
    assert CITATION in card

    from PIL import Image

    src = family.root / "in" / "a.png"
    src.parent.mkdir()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(src)
    family.ok("translate", PRETRAINED, "-i", str(src), "-t", "blue", "-o", str(family.root / "translated"))  # offline: cached
    assert Image.open(family.root / "translated" / "a.png").size == (16, 16)


@pytest.mark.skipif(shutil.which("git") is None, reason="the test hub server commits with git")
def test_push_carries_the_familys_own_citation(family, trained):
    from hub_servers import UploadServer

    mirrors = family.root / "mirrors"
    server = UploadServer(mirrors)
    try:
        family.ok("push", str(trained), "org/quill", env={"HF_ENDPOINT": server.endpoint, "HF_HUB_OFFLINE": "0",
                                                         "HF_TOKEN": "hf_test_token", "HF_HUB_DISABLE_TELEMETRY": "1"})
    finally:
        server.stop()
    card = (mirrors / "models" / "org" / "quill" / "README.md").read_text()
    assert "## Citation" in card and CITATION in card
    assert "QuillGAN: A Throw-Away Family for Testing ganzoo Plugins" in card and "- quillgan" in card


def test_the_contract_tests_cover_it(family):
    contract = REPO / "tests" / "test_contract.py"
    assert contract.is_file(), "tests/test_contract.py (the registry-generated contract tests) is missing"
    result = subprocess.run([sys.executable, "-m", "pytest", str(contract), "-k", FAMILY, "-rA", "-p", "no:cacheprovider", "-x"],
                            capture_output=True, text=True, env=family.env, cwd=REPO, timeout=600)
    passed = [line for line in result.stdout.splitlines() if line.startswith("PASSED") and f"[{FAMILY}" in line]
    assert result.returncode == 0 and passed, result.stdout[-4000:] + result.stderr[-2000:]


def test_nothing_in_the_core_names_it():
    mentions = [str(p.relative_to(REPO)) for p in (REPO / "ganzoo").rglob("*")
                if p.is_file() and FAMILY.encode() in p.read_bytes().lower()]
    assert not mentions, mentions
