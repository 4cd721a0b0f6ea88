"""Bad input, kind by kind: exit code 2 (or a GanzooError from the Python API), one sentence naming the culprit,
no traceback, and nothing written.

Every kind is one entry of ``KINDS`` (area, name, how to provoke it); ``test_bad_input`` runs each the same way:
it records every file under the test's folder, provokes the error, checks the sentence, and checks that the
folder is exactly as it was. Odd images that are *valid* (CMYK, 16-bit, palette, animated GIF, EXIF-rotated)
must load correctly instead; ``test_odd_but_valid_images_*`` check that.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.errors import CheckpointError, GanzooError, TrainingError
from tests.conftest import CodeRunningPickle, run_cli
from tests.reliability.helpers import (
    ROOT,
    assert_one_sentence,
    cli_error,
    image_folder,
    invoke,
    noise_jpeg,
    png_header_only,
    save_png,
    tiny_doc,
    tiny_model_folder,
    tree,
    write_recipe,
)

pytestmark = pytest.mark.reliability


@dataclass
class Case:
    """How to provoke one kind of bad input, and what the one sentence must name."""

    cli: list[str] | None = None  # `ganzoo ...` run in this process
    env: dict[str, str] | None = None  # with cli: run it in a subprocess with this environment (the Hub tests)
    api: Callable[[], object] | None = None  # or a Python call that must raise ...
    raises: type[GanzooError] = GanzooError  # ... this subclass of GanzooError
    culprit: tuple[str, ...] = ()  # what the sentence must contain: the file, key or name at fault
    ignore: tuple[str, ...] = ()  # folders under the test folder the command may touch (a Hub cache)
    after: Callable[[], None] | None = None  # extra checks once the error is out
    patches: list[tuple[object, str, object]] = field(default_factory=list)  # (object, attribute, value) faults


KINDS: list = []


def bad(area: str, name: str):
    """Register a kind of bad input: ``fn(env) -> Case`` prepares the inputs under ``env.tmp``."""
    def register(fn):
        KINDS.append(pytest.param(fn, id=f"{area}: {name}"))
        return fn
    return register


# --------------------------------------------------------------------------- recipes


def run_recipe(env, doc, *extra: str, name: str = "recipe.yaml") -> list[str]:
    path = write_recipe(env.tmp / name, doc)
    return ["run", str(path), "--out", str(env.tmp / "run"), "-q", *extra]


@bad("recipe", "unknown key")
def _(env):
    return Case(cli=run_recipe(env, tiny_doc(train={"stepz": 3})), culprit=("recipe.yaml", "train.stepz", 'Did you mean "steps"?'))


@bad("recipe", "wrong type")
def _(env):
    return Case(cli=run_recipe(env, tiny_doc(train={"steps": "many"})), culprit=("recipe.yaml", "train.steps", "'many'"))


@bad("recipe", "YAML syntax error")
def _(env):
    return Case(cli=run_recipe(env, "model: stargan_v2\ntrain: {steps: 3\n"), culprit=("recipe.yaml", "line", "YAML syntax error"))


@bad("recipe", "not a mapping")
def _(env):
    return Case(cli=run_recipe(env, "- model\n- data\n"), culprit=("recipe.yaml", "mapping"))


@bad("recipe", "missing file")
def _(env):
    return Case(cli=["run", str(env.tmp / "nope.yaml"), "--out", str(env.tmp / "run")], culprit=("nope.yaml", "does not exist"))


@bad("recipe", "missing base")
def _(env):
    return Case(cli=run_recipe(env, {"base": "gone.yaml", **tiny_doc()}), culprit=("gone.yaml", "recipe.yaml", "does not exist"))


@bad("recipe", "circular base")
def _(env):
    write_recipe(env.tmp / "b.yaml", {"base": "recipe.yaml"})
    return Case(cli=run_recipe(env, {"base": "b.yaml", **tiny_doc()}), culprit=("recipe.yaml -> b.yaml -> recipe.yaml", "cycle"))


@bad("recipe", "YAML alias inside itself")
def _(env):
    return Case(cli=run_recipe(env, "model: stargan_v2\ntrain: &t {steps: *t}\n"), culprit=("recipe.yaml", "YAML alias"))


@bad("recipe", "batch size 0")
def _(env):
    return Case(cli=run_recipe(env, tiny_doc(data={"batch_size": 0})), culprit=("data.batch_size", "greater than or equal to 1"))


@bad("recipe", "negative learning rate")
def _(env):
    return Case(cli=run_recipe(env, tiny_doc(optim={"lr": -1e-4})), culprit=("optim.lr", "greater than 0"))


@bad("recipe", "unknown model (did you mean)")
def _(env):
    return Case(cli=run_recipe(env, tiny_doc(model="stargan_v3")), culprit=("model", 'Did you mean "stargan_v2"?'))


@bad("recipe", "unknown dataset (did you mean)")
def _(env):
    return Case(cli=run_recipe(env, tiny_doc(data={"name": "shapez"})), culprit=("data.name", 'Did you mean "shapes"?'))


@bad("recipe", "unknown network (did you mean)")
def _(env):
    doc = tiny_doc(networks={"generator": {"name": "stargan_v2.generatr"}})
    return Case(cli=run_recipe(env, doc), culprit=("networks.generator.name", 'Did you mean "stargan_v2.generator"?'))


@bad("recipe", "unknown loss (did you mean)")
def _(env):
    return Case(cli=run_recipe(env, tiny_doc(losses={"cycle": 1.0})), culprit=("losses.cycle", 'Did you mean "cyc"?'))


@bad("recipe", "--set without =")
def _(env):
    return Case(cli=run_recipe(env, tiny_doc(), "--set", "train.steps"), culprit=("train.steps", "dotted.key=value"))


@bad("recipe", "--set into a value")
def _(env):
    return Case(cli=run_recipe(env, tiny_doc(), "--set", "train.steps.x=3"), culprit=("train.steps is a value",))


@bad("recipe", "--set unknown section")
def _(env):
    return Case(cli=run_recipe(env, tiny_doc(), "--set", "trian.steps=3"), culprit=('"trian"', 'Did you mean "train"?'))


@bad("recipe", "network that cannot be built")
def _(env):
    # StarGAN v2 needs a power-of-two image size
    return Case(cli=run_recipe(env, tiny_doc(data={"image_size": 24})), culprit=("networks.generator", "cannot be built"))


@bad("recipe", "images too small for the networks")
def _(env):
    # Builds, but the PatchGAN discriminator shrinks 8 px to nothing: caught by the probe before the run folder exists.
    recipe = ROOT / "recipes" / "cyclegan_shapes.yaml"
    return Case(cli=["run", str(recipe), "--set", "data.image_size=8", "--out", str(env.tmp / "run"), "-q"],
                culprit=("cyclegan_shapes.yaml", "networks.discriminator_", "8x8", "data.image_size"))


@bad("recipe", "absurd network width")
def _(env):
    doc = tiny_doc(networks={"generator": {"dim_in": 1_000_000, "max_conv_dim": 1_000_000}})
    return Case(cli=run_recipe(env, doc), culprit=("networks.generator", "values"))


@bad("recipe", "unknown precision")
def _(env):
    return Case(cli=run_recipe(env, tiny_doc(train={"precision": "fp8"})), culprit=("train.precision", "'fp8'", "'auto'"))


@bad("recipe", "unknown device")
def _(env):
    return Case(cli=run_recipe(env, tiny_doc(train={"device": "quantum"})), culprit=('"quantum"', "train.device"))


@bad("recipe", "--resume a folder that is not a run")
def _(env):
    (env.tmp / "empty").mkdir()
    return Case(cli=["run", "--resume", str(env.tmp / "empty")], culprit=("empty", "recipe.yaml"))


# --------------------------------------------------------------------------- data folders


def run_folder(env, root: Path, **data) -> list[str]:
    doc = tiny_doc(data={"name": "imagefolder", "root": str(root), "image_size": 16, "batch_size": 2, **data})
    del doc["data"]["num_train"], doc["data"]["num_val"]  # shapes-only keys
    return run_recipe(env, doc)


@bad("data", "root missing")
def _(env):
    return Case(cli=run_folder(env, env.tmp / "nowhere"), culprit=(str(env.tmp / "nowhere" / "train"), "missing"))


@bad("data", "empty split folder")
def _(env):
    (env.tmp / "data" / "train").mkdir(parents=True)
    return Case(cli=run_folder(env, env.tmp / "data"), culprit=(str(env.tmp / "data" / "train"), "0 domain folder(s)"))


@bad("data", "one domain only")
def _(env):
    root = image_folder(env.tmp / "data", {"train": {"horse": 2}, "val": {"horse": 1}})
    return Case(cli=run_folder(env, root), culprit=("horse", "at least 2"))


@bad("data", "domain missing in val")
def _(env):
    root = image_folder(env.tmp / "data", {"train": {"cat": 2, "dog": 2, "fox": 2}, "val": {"cat": 1, "dog": 1}})
    return Case(cli=run_folder(env, root), culprit=("val split", "cat, dog, fox"))


@bad("data", "domain missing in val (named in data.domains)")
def _(env):
    root = image_folder(env.tmp / "data", {"train": {"cat": 2, "dog": 2}, "val": {"cat": 1}})
    return Case(cli=run_folder(env, root, domains=["cat", "dog"]), culprit=('"dog"', str(root / "val")))


@bad("data", "domain folder without images")
def _(env):
    root = image_folder(env.tmp / "data", {"train": {"cat": 2}})
    (root / "train" / "dog").mkdir()
    (root / "train" / "dog" / "notes.txt").write_text("no pictures here")
    return Case(cli=run_folder(env, root), culprit=(str(root / "train" / "dog"), "contains no images"))


@bad("data", "domain folder of junk files only")
def _(env):
    root = image_folder(env.tmp / "data", {"train": {"cat": 2}})
    (root / "train" / "dog").mkdir()
    (root / "train" / "dog" / "a.jpg").write_bytes(b"")
    (root / "train" / "dog" / "b.png").write_text("<html>not a picture</html>")
    return Case(cli=run_folder(env, root), culprit=(str(root / "train" / "dog"), "None of the 2 files"))


@bad("data", "domain folder without read permission")
def _(env):
    root = image_folder(env.tmp / "data", {"train": {"cat": 2, "dog": 2}})
    locked = root / "train" / "dog"
    case = Case(cli=run_folder(env, root), culprit=(str(locked), "permission"))
    if os.geteuid() != 0:
        locked.chmod(0)
        case.after = lambda: locked.chmod(0o755)
    else:
        # root reads through any mode bits: have the OS refuse the way it would for another user
        real_access = os.access
        case.patches = [(os, "access", lambda p, mode, **kw: False if Path(p) == locked else real_access(p, mode, **kw))]
    return case


# --------------------------------------------------------------------------- images


def translate(env, source: Path, *extra: str) -> list[str]:
    return ["translate", str(env.model), "--input", str(source), "--target", "red", "--out", str(env.tmp / "out"), *extra]


@bad("image", "zero bytes")
def _(env):
    (env.tmp / "empty.jpg").write_bytes(b"")
    return Case(cli=translate(env, env.tmp / "empty.jpg"), culprit=("empty.jpg", "empty file"))


@bad("image", "truncated JPEG")
def _(env):
    data = noise_jpeg(env.tmp / "whole.jpg").read_bytes()
    (env.tmp / "cut.jpg").write_bytes(data[: len(data) // 2])
    return Case(cli=translate(env, env.tmp / "cut.jpg"), culprit=("cut.jpg", "truncated or corrupt"))


@bad("image", "not an image, image extension")
def _(env):
    (env.tmp / "page.png").write_text("<html><body>404 not found</body></html>")
    return Case(cli=translate(env, env.tmp / "page.png"), culprit=("page.png", "not an image"))


@bad("image", "1x1 pixel")
def _(env):
    save_png(env.tmp / "dot.png", size=(1, 1))
    return Case(cli=translate(env, env.tmp / "dot.png"), culprit=("dot.png", "1x1"))


@bad("image", "huge dimensions")
def _(env):
    save_png(env.tmp / "strip.png", size=(20000, 2))
    return Case(cli=translate(env, env.tmp / "strip.png"), culprit=("strip.png", "20000x2", "limit"))


@bad("image", "decompression bomb header")
def _(env):
    png_header_only(env.tmp / "bomb.png", 16000, 16000)  # 256 M pixels claimed in 57 bytes
    return Case(cli=translate(env, env.tmp / "bomb.png"), culprit=("bomb.png", "too many pixels"))


@bad("image", "folder without images")
def _(env):
    (env.tmp / "in").mkdir()
    (env.tmp / "in" / "readme.txt").write_text("nothing")
    return Case(cli=translate(env, env.tmp / "in"), culprit=(str(env.tmp / "in"), "contains no images"))


@bad("image", "folder of unreadable images only")
def _(env):
    (env.tmp / "in").mkdir()
    (env.tmp / "in" / "a.png").write_bytes(b"")
    (env.tmp / "in" / "b.jpg").write_text("not a jpeg")
    return Case(cli=translate(env, env.tmp / "in"), culprit=(str(env.tmp / "in"), "None of the 2"))


@bad("image", "unreadable --reference")
def _(env):
    src = save_png(env.tmp / "src.png")
    (env.tmp / "ref.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return Case(cli=translate(env, src, "--reference", str(env.tmp / "ref.jpg")), culprit=("ref.jpg",))


@bad("image", "unknown target domain")
def _(env):
    src = save_png(env.tmp / "src.png")
    args = translate(env, src)
    args[args.index("red")] = "blu"
    return Case(cli=args, culprit=('"blu"', 'Did you mean "blue"?'))


# --------------------------------------------------------------------------- weights


def model_copy(env) -> Path:
    return Path(shutil.copytree(env.model, env.tmp / "model"))


def edit_config(folder: Path, change: Callable[[dict], None]) -> None:
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))


def load(folder: Path) -> Callable[[], object]:
    import ganzoo

    return lambda: ganzoo.load(str(folder))


@bad("weights", "truncated safetensors")
def _(env):
    folder = model_copy(env)
    path = folder / "generator.ema.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return Case(api=load(folder), raises=CheckpointError, culprit=(str(path), "not a readable safetensors file"))


@bad("weights", "corrupted safetensors header")
def _(env):
    folder = model_copy(env)
    path = folder / "generator.safetensors"
    data = bytearray(path.read_bytes())
    data[8:24] = b"\x00" * 16  # the JSON header's first bytes
    path.write_bytes(bytes(data))
    return Case(api=load(folder), raises=CheckpointError, culprit=(str(path), "safetensors"))


@bad("weights", "wrong shapes")
def _(env):
    from safetensors.torch import load_file, save_file

    folder = model_copy(env)
    path = folder / "style_encoder.safetensors"
    state = load_file(str(path))
    key = next(iter(state))
    state[key] = torch.zeros(*state[key].shape[:-1], state[key].shape[-1] + 1)
    save_file(state, str(path))
    return Case(api=load(folder), raises=CheckpointError, culprit=(str(path), key, "does not fit the style_encoder"))


@bad("weights", "another model family's weights")
def _(env):
    from ganzoo.plugins import get_registry
    from ganzoo.recipe import recipe_from_dict

    recipe = recipe_from_dict({"model": "pix2pix", "networks": {"generator": {"name": "cyclegan.unet_generator", "num_downs": 5, "ngf": 4},
                                                                "discriminator": {"ndf": 4, "n_layers": 1}},
                               "data": {"name": "shapes_pairs", "image_size": 16}}, check_data=False)
    other = get_registry().get("models", "pix2pix")(recipe, ["silhouette", "blue"])
    other.build()
    pix2pix = other.save_pretrained(env.tmp / "pix2pix")
    folder = model_copy(env)
    shutil.copy(pix2pix / "generator.safetensors", folder / "generator.safetensors")
    return Case(api=load(folder), raises=CheckpointError, culprit=(str(folder / "generator.safetensors"), "another model"))


@bad("weights", "config.json of another library")
def _(env):
    folder = env.tmp / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 768}))
    return Case(api=load(folder), raises=CheckpointError, culprit=(str(folder / "config.json"), "not a ganzoo model config"))


@bad("weights", "config.json not JSON")
def _(env):
    folder = model_copy(env)
    (folder / "config.json").write_text('{"format": "ganzoo-model", ')
    return Case(api=load(folder), raises=CheckpointError, culprit=(str(folder / "config.json"), "not valid JSON"))


@bad("weights", "missing network file")
def _(env):
    folder = model_copy(env)
    (folder / "style_encoder.safetensors").unlink()
    return Case(api=load(folder), raises=CheckpointError, culprit=(str(folder), "style_encoder.safetensors"))


@bad("weights", "config.json absurd image size")
def _(env):
    folder = model_copy(env)
    edit_config(folder, lambda c: c.update(image_size=10**9))
    return Case(api=load(folder), raises=CheckpointError, culprit=("config.json", '"image_size" is 1000000000'))


@bad("weights", "config.json absurd channel count")
def _(env):
    folder = model_copy(env)
    edit_config(folder, lambda c: c["networks"]["generator"]["kwargs"].update(dim_in=10**6, max_conv_dim=10**6))
    return Case(api=load(folder), raises=CheckpointError, culprit=("config.json", "networks.generator", "values"))


@bad("weights", "config.json negative channel count")
def _(env):
    folder = model_copy(env)
    edit_config(folder, lambda c: c["networks"]["discriminator"]["kwargs"].update(dim_in=-8))
    return Case(api=load(folder), raises=CheckpointError, culprit=("config.json", "networks.discriminator"))


@bad("weights", "convert: not a PyTorch file")
def _(env):
    (env.tmp / "G.ckpt").write_bytes(os.urandom(256))
    return Case(cli=["convert", "stargan_v2", str(env.tmp / "G.ckpt"), str(env.tmp / "out")],
                culprit=("G.ckpt", "not a readable PyTorch checkpoint"))


@bad("weights", "convert: code in the pickle")
def _(env):
    marker = env.tmp / "pwned"
    torch.save({"generator": CodeRunningPickle(marker)}, env.tmp / "G.ckpt")  # what a booby-trapped release would look like

    def after():
        assert not marker.exists()

    return Case(cli=["convert", "stargan_v2", str(env.tmp / "G.ckpt"), str(env.tmp / "out")],
                culprit=("Refusing to load", "G.ckpt", "weights_only=True"), after=after)


@bad("weights", "convert: another family's checkpoint")
def _(env):
    from ganzoo_cyclegan.networks import NLayerDiscriminator

    torch.save(NLayerDiscriminator(3, 8, 2).state_dict(), env.tmp / "latest_net_D.pth")
    return Case(cli=["convert", "stargan_v2", str(env.tmp / "latest_net_D.pth"), str(env.tmp / "out")],
                culprit=("latest_net_D.pth",))


@bad("weights", "convert into a folder that is not empty")
def _(env):
    (env.tmp / "out").mkdir()
    (env.tmp / "out" / "keep.txt").write_text("mine")
    (env.tmp / "G.ckpt").write_bytes(b"x")
    return Case(cli=["convert", "stargan_v2", str(env.tmp / "G.ckpt"), str(env.tmp / "out")],
                culprit=(str(env.tmp / "out"), "not empty"))


@bad("weights", "tampered release hash")
def _(env):
    from ganzoo.zoo import PretrainedEntry, download_release
    from tests.hub_servers import FileServer

    (env.tmp / "www").mkdir()
    (env.tmp / "www" / "nets.ckpt").write_bytes(b"official weights" * 64)
    server = FileServer(env.tmp / "www")
    entry = PretrainedEntry(name="stargan_v2.tampered", family="stargan_v2", url=f"{server.endpoint}/nets.ckpt",
                            converter="stargan_v2", sha256="0" * 64)
    return Case(api=lambda: download_release(entry, env.tmp / "cache"), culprit=("stargan_v2.tampered", "sha256", "deleted"),
                ignore=("cache",), after=lambda: (server.stop(), _assert_no_files(env.tmp / "cache")))


def _assert_no_files(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if p.is_file()], tree(folder)  # the bad download is not kept


# --------------------------------------------------------------------------- the Hub (a real olah mirror)


def hub_env(env, online: bool) -> dict[str, str]:
    endpoint = env.mirror().endpoint if online else "http://127.0.0.1:9"
    return {"HF_HOME": str(env.tmp / "hf"), "HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "0" if online else "1",
            "HF_HUB_DISABLE_TELEMETRY": "1"}


@bad("hub", "unknown repo")
def _(env):
    return Case(cli=["pull", "org/nothing-here", "--local-dir", str(env.tmp / "copy")], env=hub_env(env, True),
                culprit=("org/nothing-here", "was not found"), ignore=("hf",))


@bad("hub", "wrong revision")
def _(env):
    return Case(cli=["pull", "org/tiny@no-such-branch", "--local-dir", str(env.tmp / "copy")], env=hub_env(env, True),
                culprit=("org/tiny", "no-such-branch"), ignore=("hf",))


@bad("hub", "offline with an empty cache")
def _(env):
    return Case(cli=["pull", "org/tiny", "--local-dir", str(env.tmp / "copy")], env=hub_env(env, False),
                culprit=("org/tiny", "HF_HUB_OFFLINE=1"), ignore=("hf",))


# --------------------------------------------------------------------------- the output folder


def train(env, out: Path, **train):
    from ganzoo.recipe import recipe_from_dict
    from ganzoo.trainer import Trainer

    recipe = recipe_from_dict(tiny_doc(train={"steps": 1, "sample_every": 0, **train}))
    return lambda: Trainer(recipe, out, quiet=True).run()


@bad("output", "read-only folder")
def _(env):
    if os.geteuid() != 0:
        locked = env.tmp / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        out = locked / "run"
        return Case(api=train(env, out), raises=TrainingError, culprit=(str(out), "Cannot write"), after=lambda: locked.chmod(0o755))
    # root writes through mode bits; sysfs refuses new entries even to root
    out = Path("/sys/ganzoo-reliability-test/run")
    assert Path("/sys/kernel").is_dir() and not out.parent.exists()  # a Linux sysfs, or this case cannot run here
    return Case(api=train(env, out), raises=TrainingError, culprit=(str(out), "Cannot write"),
                after=lambda: _assert_absent(out.parent))


def _assert_absent(path: Path) -> None:
    assert not path.exists()


@bad("output", "full disk")
def _(env):
    usage = shutil.disk_usage(env.tmp)
    full = type(usage)(usage.total, usage.total - 4096, 4096)
    return Case(api=train(env, env.tmp / "run"), raises=TrainingError, culprit=(str(env.tmp / "run"), "free", "checkpoint"),
                patches=[(shutil, "disk_usage", lambda path: full)])


@bad("output", "output path is a file")
def _(env):
    (env.tmp / "taken").write_text("a file, not a folder")
    return Case(api=train(env, env.tmp / "taken" / "run"), raises=TrainingError, culprit=(str(env.tmp / "taken" / "run"), "Cannot write"))


@bad("output", "folder already holds a run")
def _(env):
    train(env, env.tmp / "run")()  # a finished run: the second one must not touch it
    return Case(cli=run_recipe(env, tiny_doc()), culprit=(str(env.tmp / "run"), "--resume"))


# --------------------------------------------------------------------------- the test


def snapshot(folder: Path, ignore: tuple[str, ...]) -> dict[str, tuple]:
    """Every path under ``folder`` with its size and modification time."""
    out = {}
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if rel.parts[0] in ignore:
            continue
        stat = path.lstat()
        out[str(rel)] = (stat.st_size if path.is_file() else -1, stat.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A tiny StarGAN v2 model folder, and an olah Hub mirror started on first use (one per module)."""
    from tests.hub_servers import OlahMirror, git_repo

    base = tmp_path_factory.mktemp("reliability")
    model = tiny_model_folder(base / "model")
    state = {}

    def mirror():
        if "mirror" not in state:
            server = OlahMirror(base / "olah").start()
            state["mirror"] = server
            files = {str(p.relative_to(model)): p.read_bytes() for p in model.rglob("*") if p.is_file()}
            git_repo(server.mirrors / "models/org/tiny", files)
        return state["mirror"]

    yield SimpleNamespace(model=model, mirror=mirror)
    if "mirror" in state:
        state["mirror"].stop()


@pytest.mark.bad_input
@pytest.mark.parametrize("provoke", KINDS)
def test_bad_input(provoke, shared, tmp_path, monkeypatch):
    env = SimpleNamespace(tmp=tmp_path, model=shared.model, mirror=shared.mirror)
    case = provoke(env)
    before = snapshot(tmp_path, case.ignore)
    for obj, name, value in case.patches:
        monkeypatch.setattr(obj, name, value)
    try:
        if case.cli is not None and case.env is not None:
            result = run_cli(*case.cli, env=case.env)
            assert result.returncode == 2, (result.returncode, result.stderr)
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
            message = lines[0][len("error: "):]
            assert_one_sentence(message)
        elif case.cli is not None:
            message = cli_error(*case.cli)
        else:
            with pytest.raises(GanzooError) as info:
                case.api()
            assert isinstance(info.value, case.raises), type(info.value)
            message = str(info.value)
            assert_one_sentence(message)
        after = snapshot(tmp_path, case.ignore)  # before case.after() gives locked folders their modes back
    finally:
        monkeypatch.undo()
        if case.after is not None:
            case.after()
    for needle in case.culprit:
        assert needle in message, (needle, message)
    assert after == before, "the failed command wrote or changed files"


def test_the_table_holds_at_least_30_kinds():
    assert len(KINDS) >= 30
    areas = {param.id.split(":")[0] for param in KINDS}
    assert areas == {"recipe", "data", "image", "weights", "hub", "output"}


# --------------------------------------------------------------------------- odd but valid images


def _cmyk(path):
    Image.new("CMYK", (20, 12), (0, 255, 255, 0)).save(path)  # pure red in CMYK
    return (255, 0, 0), (20, 12)


def _sixteen_bit(path):
    Image.fromarray(np.full((12, 20), 40000, np.uint16)).save(path)
    return (156, 156, 156), (20, 12)  # 40000 / 257, not clipped to 255


def _palette(path):
    img = Image.new("P", (20, 12), 1)
    img.putpalette([0, 0, 0, 0, 128, 255] + [0] * 762)
    img.save(path)
    return (0, 128, 255), (20, 12)


def _animated_gif(path):
    frames = [Image.new("RGB", (20, 12), c) for c in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=40, loop=0)
    return (255, 0, 0), (20, 12)  # the first frame


def _exif_rotated(path):
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 10, 20))  # a red band on the left...
    exif = img.getexif()
    exif[0x0112] = 6  # ... "rotate 90 degrees clockwise to display": the band ends up on top
    img.save(path, exif=exif, quality=95)
    return (255, 0, 0), (20, 40)


def _grey_alpha(path):
    Image.new("LA", (20, 12), (0, 0)).save(path)  # fully transparent: white, not black
    return (255, 255, 255), (20, 12)


VALID = {"CMYK.jpg": _cmyk, "16-bit.png": _sixteen_bit, "palette.png": _palette, "animated.gif": _animated_gif,
         "exif-rotated.jpg": _exif_rotated, "grey-alpha.png": _grey_alpha}


@pytest.mark.parametrize("name", VALID)
def test_odd_but_valid_images_load_correctly(name, tmp_path):
    from ganzoo.data.images import read_image

    colour, size = VALID[name](tmp_path / name)
    img = read_image(tmp_path / name)
    assert img.mode == "RGB" and img.size == size
    top_middle = tuple(int(v) for v in np.asarray(img)[2, size[0] // 2])
    assert all(abs(a - b) <= 30 for a, b in zip(top_middle, colour)), (top_middle, colour)


def test_odd_but_valid_images_translate_and_train(tmp_path, shared):
    # translate: all of them, one folder
    for name, make in VALID.items():
        (tmp_path / "in").mkdir(exist_ok=True)
        make(tmp_path / "in" / name)
    outcome = invoke("translate", str(shared.model), "-i", str(tmp_path / "in"), "-t", "blue", "-o", str(tmp_path / "out"))
    assert outcome.code == 0, outcome.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(VALID)
    assert "skipped" not in outcome.stderr
    # train: the same files as one domain of an image folder
    root = image_folder(tmp_path / "data", {"train": {"plain": 2}, "val": {"plain": 1, "odd": 1}})
    shutil.copytree(tmp_path / "in", root / "train" / "odd")
    from ganzoo.recipe import recipe_from_dict
    from ganzoo.trainer import Trainer

    doc = tiny_doc(data={"name": "imagefolder", "root": str(root), "image_size": 16, "batch_size": 2},
                   train={"steps": 2, "sample_every": 0})
    del doc["data"]["num_train"], doc["data"]["num_val"]
    trainer = Trainer(recipe_from_dict(doc), tmp_path / "run", quiet=True)
    assert trainer.run().step == 2
    assert trainer.dataset.num_skipped == 0 and sorted(trainer.dataset.domains) == ["odd", "plain"]
