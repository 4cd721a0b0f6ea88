"""Security: files from users and the Hub are data, never code.

- Official checkpoints go through ``torch.load(weights_only=True)``: a pickle that would run code is refused with
  one sentence, and the code does not run (a marker file it would create never appears).
- Model folders are read as JSON + safetensors only: extra files in them (pickles, Python modules) are ignored,
  and names in config.json resolve through the registry, never as import paths.
- config.json values are checked before they size any tensor: an absurd width is refused before a single large
  allocation is even requested.
- The source holds no unsafe loader (pickle, yaml.load, allow_pickle, eval/exec) and no remote-code switch.
"""

from __future__ import annotations

import ast
import json
import pickle
import shutil
import sys
from pathlib import Path

import pytest
import torch

import ganzoo
from ganzoo.errors import GanzooError
from tests.conftest import CodeRunningPickle
from tests.families import converter_names
from tests.reliability.helpers import ROOT, cli_error, tiny_model_folder, tree

pytestmark = pytest.mark.reliability


def booby_trapped(path: Path, marker: Path, how: str) -> Path:
    payload = {"generator": CodeRunningPickle(marker), "G": CodeRunningPickle(marker), "state_dict": {"w": torch.zeros(2)}}
    if how == "torch.save":  # the zip format official releases use, with the payload beside a real tensor
        torch.save(payload, path)
    else:  # a bare pickle, as old checkpoints were
        with open(path, "wb") as fh:
            pickle.dump(payload, fh, protocol=int(how.split()[-1]))
    return path


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch notes the bare pickle's protocol; it refuses it anyway
@pytest.mark.parametrize("family", converter_names())  # every registered converter, built-in or third-party
@pytest.mark.parametrize("how", ["torch.save", "pickle protocol 2", "pickle protocol 4"])
def test_a_checkpoint_that_would_run_code_is_refused_and_the_code_never_runs(tmp_path, family, how):
    marker = tmp_path / "pwned"
    ckpt = booby_trapped(tmp_path / "200000-G.ckpt", marker, how)
    sentence = cli_error("convert", family, str(ckpt), str(tmp_path / "out"))
    assert str(ckpt) in sentence
    assert not marker.exists(), "unpickling ran the planted command"
    assert not (tmp_path / "out").exists()
    # the same file through the library function every converter uses
    from ganzoo.checkpoint import load_official_checkpoint

    with pytest.raises(GanzooError):
        load_official_checkpoint(ckpt)
    assert not marker.exists()
    # control: the payload is live, so the test above could fail
    with pytest.raises(Exception):
        torch.load(ckpt, weights_only=True)
    if how == "torch.save":
        torch.load(ckpt, weights_only=False)  # what ganzoo never does
        assert marker.exists()


def test_a_model_folder_is_read_as_data_only(tmp_path, monkeypatch):
    folder = tiny_model_folder(tmp_path / "model")
    marker = tmp_path / "pwned"
    # Things a hostile repo might add: pickles under names other libraries load, and Python modules.
    booby_trapped(folder / "pytorch_model.bin", marker, "torch.save")
    booby_trapped(folder / "generator.pt", marker, "torch.save")
    for name in ("modeling_ganzoo.py", "__init__.py", "ganzoo_custom.py"):
        (folder / name).write_text(f"import pathlib; pathlib.Path({str(marker)!r}).touch()\n")
    model = ganzoo.load(str(folder))
    assert model.step == 0 and set(model.nets) >= {"generator", "style_encoder"}
    assert not marker.exists()

    # Names in config.json go through the registry: an import path is just an unknown name.
    (tmp_path / "evil_module.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\nclass Net:\n    pass\nclass Model:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for key, value in (("model", "evil_module:Model"), ("networks.generator.name", "evil_module:Net")):
        config = json.loads((folder / "config.json").read_text())
        if key == "model":
            config["model"] = value
        else:
            config["networks"]["generator"]["name"] = value
        bad = Path(shutil.copytree(folder, tmp_path / f"bad-{key}"))
        (bad / "config.json").write_text(json.dumps(config))
        with pytest.raises(GanzooError) as info:
            ganzoo.load(str(bad))
        assert "evil_module" in str(info.value)
    assert not marker.exists() and "evil_module" not in sys.modules


class HugeAllocation(Exception):
    """Raised by the allocation spy instead of allocating (not a RuntimeError: nothing may catch it quietly)."""


@pytest.mark.parametrize("change", [
    {"dim_in": 20_000, "max_conv_dim": 20_000},  # 3x3 convolutions of 20,000 x 20,000 channels: 14 GB each
    {"dim_in": 4096, "max_conv_dim": 4096},  # 1.8 G parameters in all, 0.6 GB for the largest convolution
])
def test_absurd_config_json_widths_are_refused_before_allocating(tmp_path, monkeypatch, change):
    folder = tiny_model_folder(tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    config["networks"]["generator"]["kwargs"].update(change)
    (folder / "config.json").write_text(json.dumps(config))

    real_empty = torch.empty
    largest = []

    def spy(*args, **kwargs):  # what nn.Conv2d / nn.Linear allocate their parameters with
        wanted = real_empty(*args, **{**kwargs, "device": "meta"}).numel()
        on_meta = str(kwargs.get("device") or torch.get_default_device()) == "meta"
        if not on_meta:
            largest.append(wanted)
            if wanted > 10**8:
                raise HugeAllocation(f"{wanted:,} values requested")
        return real_empty(*args, **kwargs)

    monkeypatch.setattr(torch, "empty", spy)
    with pytest.raises(GanzooError) as info:
        ganzoo.load(str(folder))
    message = str(info.value)
    assert "config.json" in message and "networks.generator" in message and "\n" not in message
    assert max(largest, default=0) < 10**6  # only the small networks before the generator were built


def test_absurd_config_json_image_size_is_refused(tmp_path):
    folder = tiny_model_folder(tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    config["image_size"] = 2**31
    (folder / "config.json").write_text(json.dumps(config))
    before = tree(tmp_path)
    sentence = cli_error("translate", str(folder), "-i", str(tmp_path / "model"), "-t", "red", "-o", str(tmp_path / "out"))
    assert "image_size" in sentence and "config.json" in sentence
    assert tree(tmp_path) == before


# --------------------------------------------------------------------------- the source itself

SOURCES = sorted(p for base in ("ganzoo", "plugins") for p in (ROOT / base).rglob("*.py"))


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def unsafe_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.keyword) and node.arg in ("trust_remote_code", "allow_pickle") and not (
                isinstance(node.value, ast.Constant) and node.value.value is False):
            found.append(f"{node.arg}= (line {node.value.lineno})")
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        kwargs = {k.arg: k.value for k in node.keywords}
        if name == "torch.load":
            safe = kwargs.get("weights_only")
            if not (isinstance(safe, ast.Constant) and safe.value is True):
                found.append(f"torch.load without weights_only=True (line {node.lineno})")
        if name.split(".")[-1] in ("load", "loads") and name.split(".")[0] in ("pickle", "cPickle", "dill", "joblib", "marshal"):
            found.append(f"{name} (line {node.lineno})")
        if name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "torch.hub.load", "eval", "exec"):
            found.append(f"{name} (line {node.lineno})")
    return found


def test_the_source_has_no_unsafe_loader_and_no_remote_code():
    problems = {str(p.relative_to(ROOT)): unsafe_calls(p) for p in SOURCES}
    assert len(SOURCES) > 20
    assert {k: v for k, v in problems.items() if v} == {}


def test_the_source_scan_catches_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import torch, pickle, yaml\n"
                      "torch.load(p)\ntorch.load(p, weights_only=False)\ntorch.load(p, weights_only=True)\n"
                      "pickle.loads(b)\nyaml.load(s)\nyaml.safe_load(s)\n"
                      "load_dataset('x', trust_remote_code=True)\nnp.load(p, allow_pickle=True)\n")
    found = unsafe_calls(sample)
    assert len(found) == 6, found  # everything but the weights_only=True load and safe_load
