"""Fuzzing with hypothesis: recipe documents, --set overrides, YAML text, networks that must run, config.json files and
image bytes. Whatever comes in, what comes out is success or a GanzooError (exit code 2 from the CLI), never
another exception. Example counts are modest and derandomized, so CI runs the same examples every time.
"""

from __future__ import annotations

import copy
import io
import json
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ganzoo.errors import GanzooError
from tests import families
from tests.conftest import TINY_V2
from tests.reliability.helpers import ROOT, invoke, tiny_model_folder

pytestmark = pytest.mark.reliability


def fuzz(examples: int):
    return settings(max_examples=examples, derandomize=True, deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


EXAMPLES = {"recipe documents": 300, "--set overrides": 200, "YAML text": 100, "networks that must run": 16,
            "config.json": 40, "image bytes": 120}

# Values of every JSON/YAML kind, including the awkward ones (huge ints, nan, nested lists and mappings).
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.integers(-3, 70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                      max_leaves=6)
YAML_VALUES = st.one_of(SCALARS, SCALARS, st.recursive(  # mostly scalars; mappings with any keys, as YAML allows
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SCALARS, inner, max_size=3), max_leaves=6))


def dotted_keys(doc, prefix=()) -> list[tuple[str, ...]]:
    keys = []
    for key, value in doc.items():
        keys.append((*prefix, key))
        if isinstance(value, dict):
            keys += dotted_keys(value, (*prefix, key))
    return keys


# The real keys of a recipe (so mutations hit validation paths, not only "unknown key"), and some that are not.
REAL_KEYS = dotted_keys(TINY_V2) + [("train", k) for k in ("precision", "device", "ema", "keep_checkpoints", "threads",
                                                          "compile", "channels_last", "sample_count")] + \
    [("optim", k) for k in ("lr", "betas", "schedule", "decay_start", "mapping_lr")] + \
    [("base",), ("eval", "metrics"), ("networks", "generator", "name"), ("networks", "discriminator", "name"), ("data", "root")]
# YAML keys need not be strings (``1: x``, ``null: x``), so neither do ours.
KEY_PARTS = st.one_of(st.text(max_size=6), st.integers(-1, 3), st.none(), st.booleans())
REAL = st.sampled_from(REAL_KEYS)
KEYS = st.one_of(REAL, REAL, REAL, REAL, st.lists(KEY_PARTS, min_size=1, max_size=3).map(tuple),  # mostly real keys
                 st.builds(lambda real, extra: (*real[:-1], extra), REAL, KEY_PARTS))


def mutate(doc: dict, key: tuple, value, delete: bool) -> dict:
    doc = copy.deepcopy(doc)
    node = doc
    for part in key[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    if delete:
        node.pop(key[-1], None)
    else:
        node[key[-1]] = value
    return doc


@fuzz(EXAMPLES["recipe documents"])
@given(st.lists(st.tuples(KEYS, YAML_VALUES, st.booleans()), min_size=1, max_size=2))
def test_recipe_documents(mutations):
    from ganzoo.recipe import recipe_from_dict

    doc = TINY_V2
    for key, value, delete in mutations:
        doc = mutate(doc, key, value, delete)
    try:
        recipe_from_dict(doc, source="fuzzed.yaml")
    except GanzooError as exc:
        assert str(exc) and "\n" not in str(exc)


# Raw --set values as people type them: numbers, YAML flow collections, words, nothing.
RAW_VALUES = st.one_of(st.text(max_size=16), st.sampled_from(["0", "-1", "3", "1e9", "1e400", "nan", ".inf", "[1, 2]", "[]",
                                                              "{a: 1}", "{}", "null", "true", "''", "x", "[", "{", "*a", "!!binary x"]))
OVERRIDE_TEXT = st.one_of(
    st.builds(lambda key, value: f"{'.'.join(map(str, key))}={value}", KEYS, RAW_VALUES),
    st.builds(lambda key, value: f"{'.'.join(map(str, key))}={json.dumps(value)}", KEYS, VALUES),
    st.text(max_size=24),
)


@fuzz(EXAMPLES["--set overrides"])
@given(st.lists(OVERRIDE_TEXT, min_size=1, max_size=3))
def test_cli_overrides(overrides):
    args = ["config", "show", str(ROOT / "recipes" / "quickstart.yaml")]
    for text in overrides:
        args += ["--set", text]
    outcome = invoke(*args)  # asserts that no exception escaped the command
    assert outcome.code in (0, 2), outcome.stderr
    if outcome.code == 2:
        assert outcome.message and "Traceback" not in outcome.stderr


YAML_PIECES = st.sampled_from(["model: stargan_v2\n", "train:\n", "  steps: 3\n", "{", "}", "[", "]", ": ", "- ", "&a ",
                               "*a ", "!!python/object:os.system ", "base: x.yaml\n", "\t", "'", '"', "%YAML 1.2\n",
                               "---\n", "data: {image_size: 16}\n", "\x00", "é", "? ", "|\n", "<<: *a\n"])


@fuzz(EXAMPLES["YAML text"])
@given(st.one_of(st.lists(YAML_PIECES, max_size=12).map("".join), st.text(max_size=80)))
def test_recipe_yaml_text(text):
    from ganzoo.recipe import load_recipe

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzzed.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            load_recipe(path)
        except GanzooError as exc:
            assert str(exc) and "\n" not in str(exc)


# Networks with small but arbitrary sizes: the recipe validates, so the networks are built and the train step runs
# once (the trainer's probe). Whatever the sizes, the answer is a run or one RecipeError, never a torch error.
# Every registered model with a declared tiny recipe (tests/families.py; the contract tests fail the others); what
# varies is every integer network argument of that recipe (widths, depths, block counts).
FAMILIES = {name: families.tiny_doc(name) for name in families.declared_model_names()}
SIZES = {name: families.network_size_keys(name) for name in FAMILIES}


@st.composite
def small_networks(draw):
    family = draw(st.sampled_from(sorted(FAMILIES)))
    doc = mutate(FAMILIES[family], ("data", "image_size"), draw(st.sampled_from([8, 12, 16, 24, 32])), False)
    for key in draw(st.lists(st.sampled_from(SIZES[family]), max_size=2, unique=True)):
        doc = mutate(doc, key, draw(st.integers(-1, 9)), False)
    return doc


@fuzz(EXAMPLES["networks that must run"])
@given(small_networks())
def test_networks_that_validate_also_run(doc):
    from ganzoo.recipe import load_recipe
    from ganzoo.trainer import Trainer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "fuzzed.yaml").write_text(json.dumps(doc))  # JSON is YAML; base: paths are absolute
            try:
                trainer = Trainer(load_recipe(Path(tmp) / "fuzzed.yaml"), Path(tmp) / "run", quiet=True)
                trainer._setup()  # data, networks, and the probe step: everything before the run directory
            except GanzooError as exc:
                assert str(exc) and "\n" not in str(exc)
                assert not (Path(tmp) / "run").exists()
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return tiny_model_folder(tmp_path_factory.mktemp("fuzz") / "model")


CONFIG_KEYS = st.sampled_from([("image_size",), ("domains",), ("model",), ("step",), ("networks",), ("format",),
                               ("networks", "generator"), ("networks", "generator", "name"), ("networks", "generator", "kwargs"),
                               ("networks", "generator", "kwargs", "dim_in"), ("networks", "generator", "kwargs", "img_size"),
                               ("networks", "mapping_network", "kwargs", "num_domains"), ("networks", "discriminator", "kwargs", "max_conv_dim"),
                               ("recipe",), ("recipe", "data", "image_size"), ("recipe", "networks")])


@fuzz(EXAMPLES["config.json"])
@given(st.lists(st.tuples(CONFIG_KEYS, VALUES, st.booleans()), min_size=1, max_size=3))
def test_model_folder_config_json(model_folder, mutations):
    import ganzoo

    config = json.loads((model_folder / "config.json").read_text())
    for key, value, delete in mutations:
        config = mutate(config, key, value, delete)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(shutil.copytree(model_folder, Path(tmp) / "model"))
        (folder / "config.json").write_text(json.dumps(config, allow_nan=True))
        try:
            ganzoo.load(str(folder))
        except GanzooError as exc:
            assert str(exc) and "\n" not in str(exc)


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (12, 10), (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (12, 10), (10, 200, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


@st.composite
def damaged_images(draw):
    data = bytearray(draw(st.sampled_from([_png_bytes(), _jpeg_bytes()])))
    for _ in range(draw(st.integers(0, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


@fuzz(EXAMPLES["image bytes"])
@given(st.one_of(damaged_images(), st.binary(max_size=64)), st.sampled_from([".png", ".jpg", ".gif", ".webp"]))
def test_image_bytes(data, suffix):
    from ganzoo.data.imagefolder import header_problem
    from ganzoo.data.images import read_image

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzzed{suffix}"
        path.write_bytes(data)
        header_problem(path)  # never raises
        try:
            img = read_image(path)
        except GanzooError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc)
        else:
            assert img.mode == "RGB" and min(img.size) >= 2
