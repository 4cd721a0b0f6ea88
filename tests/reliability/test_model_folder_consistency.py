"""A consistent model folder or a clear refusal: a config.json whose roles, network kinds, domain count or model
name do not fit each other is refused at load with one sentence naming the mismatch (before any network is
built), from a local folder and from the Hub alike."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import pytest

import ganzoo
from ganzoo.errors import CheckpointError
from tests.conftest import run_cli
from tests.reliability.helpers import BAD_INPUT, assert_one_sentence, save_png, tiny_model_folder

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model_folder(tmp_path_factory.mktemp("consistency") / "model")


def _extra_role(c):
    c["networks"]["painter"] = c["networks"]["generator"]


def _swap_kind(c):
    c["networks"]["generator"]["name"] = "stargan_v2.discriminator"


def _fewer_domains(c):
    c["domains"] = ["red", "green"]


def _more_domains(c):
    c["domains"] = ["red", "green", "blue", "grey", "pink"]


def _other_model(c):
    c["model"] = "cyclegan"


def _unknown_model(c):
    c["model"] = c["recipe"]["model"] = "stargan_v3"


def _unknown_network(c):
    c["networks"]["style_encoder"]["name"] = "stargan_v2.style_encodr"


def _ghost_ema(c):
    c["ema"] = [*c["ema"], "ghost"]


def _recipe_not_a_mapping(c):
    c["recipe"] = ["model", "stargan_v2"]


def _image_size_disagrees(c):
    c["image_size"] = 32


#: change to config.json -> what the sentence must name
MISMATCHES: dict[str, tuple[Callable[[dict], None], tuple[str, ...]]] = {
    "a role the model does not have": (_extra_role, ('"networks"', "'painter'", "roles are generator")),
    "a discriminator as the generator": (_swap_kind, ('"networks.generator"', "discriminators", "generators")),
    "fewer domains than the networks": (_fewer_domains, ("num_domains", "2 domain(s)", "give 2")),
    "more domains than the networks": (_more_domains, ("num_domains", "5 domain(s)", "give 5")),
    "model name of another family": (_other_model, ('"model" is \'cyclegan\'', "stargan_v2")),
    "model no plugin registers": (_unknown_model, ("'stargan_v3'", "no installed plugin", "did you mean 'stargan_v2'")),
    "network no plugin registers": (_unknown_network, ("style_encoder", "'stargan_v2.style_encodr'", "no installed plugin")),
    "EMA of a network it lacks": (_ghost_ema, ('"ema"', "'ghost'")),
    "recipe that is not a mapping": (_recipe_not_a_mapping, ('"recipe"', "mapping")),
    "image size its recipe and networks disagree with": (_image_size_disagrees, ('"image_size" is 32', "data.image_size 16")),
}


@BAD_INPUT
@pytest.mark.parametrize("name", MISMATCHES)
def test_inconsistent_config_is_refused_naming_the_mismatch(name, model, tmp_path):
    change, culprit = MISMATCHES[name]
    folder = Path(shutil.copytree(model, tmp_path / "model"))
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as info:
        ganzoo.load(str(folder))
    message = str(info.value)
    assert_one_sentence(message)
    assert str(folder / "config.json") in message, message
    for needle in culprit:
        assert needle in message, (needle, message)


def test_a_consistent_folder_still_loads(model):
    net = ganzoo.load(str(model))
    assert net.domains == ["red", "green", "blue"]


@BAD_INPUT
def test_inconsistent_folder_from_the_hub_is_refused(model, tmp_path):
    from tests.hub_servers import OlahMirror, git_repo

    config = json.loads((model / "config.json").read_text())
    _fewer_domains(config)
    files = {str(p.relative_to(model)): p.read_bytes() for p in model.rglob("*") if p.is_file()}
    files["config.json"] = json.dumps(config)
    server = OlahMirror(tmp_path / "olah").start()
    try:
        git_repo(server.mirrors / "models" / "org" / "mixed", files)
        save_png(tmp_path / "a.png", size=(16, 16))
        env = {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": server.endpoint, "HF_HUB_OFFLINE": "0",
               "HF_HUB_DISABLE_TELEMETRY": "1"}
        result = run_cli("translate", "org/mixed", "-i", str(tmp_path / "a.png"), "-t", "red", "-o", str(tmp_path / "out"),
                         env=env, timeout=120)
    finally:
        server.stop()
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr  # refused before the weights are fetched
    message = lines[0][len("error: "):]
    assert_one_sentence(message)
    assert "org/mixed" in message and "config.json" in message and "num_domains" in message, message
    assert "2 domain(s)" in message, message
    assert not (tmp_path / "out").exists()
    snapshots = list((tmp_path / "hf" / "hub").glob("models--org--mixed/snapshots/*/*"))
    assert [p.name for p in snapshots] == ["config.json"], snapshots  # no weights downloaded
