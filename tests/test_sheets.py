"""Sample sheets: sizes, labels, determinism, animations, per-family targets, the trainer and `ganzoo sample`."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from ganzoo import sheets
from ganzoo.recipe import load_recipe, recipe_from_dict
from ganzoo.sheets import LINE_HEIGHT, PAD, Sheet, SheetInputs, write_sheet, write_sheets
from tests.conftest import TINY_V2, run_cli

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = ["red", "green", "blue"]
ATTRS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]


def random_images(n: int, seed: int, size: int = 16) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture(scope="module")
def v2_model():
    """A tiny untrained StarGAN v2: layout and determinism do not need a trained one."""
    from ganzoo_stargan_v2.model import StarGANv2

    torch.manual_seed(0)
    model = StarGANv2(recipe_from_dict(TINY_V2, check_data=False), DOMAINS)
    model.build()
    return model


def v2_inputs(**changes) -> SheetInputs:
    values = dict(sources=random_images(3, 1), source_names=["a", "b", "c"], references=random_images(4, 2),
                  reference_domains=[0, 0, 2, 2], num_styles=2, frames=3)
    return SheetInputs(**{**values, **changes})


def dark_pixels(image: Image.Image, box) -> int:
    return int((np.asarray(image.convert("L").crop(box)) < 128).sum())


def test_sheet_size_follows_rows_columns_cell_padding_and_header():
    cells = [[random_images(1, i)[0] for i in range(3)], [None, *random_images(2, 9)]]
    plain = Sheet("t", cells, row_labels=[], column_labels=[])
    assert plain.render().size == (3 * (16 + PAD) + PAD, 2 * (16 + PAD) + PAD)
    labelled = Sheet("t", cells, row_labels=["row one", "2"], column_labels=["x", "y", "z"], column_groups=["", "g", "g"])
    width, height = labelled.render().size
    assert labelled.header_height == 2 * LINE_HEIGHT and labelled.label_width > 0
    assert (width, height) == (labelled.label_width + 3 * (16 + PAD) + PAD, 2 * LINE_HEIGHT + 2 * (16 + PAD) + PAD)
    # The image lands at its cell untouched (full resolution, no resampling).
    left, top = labelled.cell_box(0, 1)
    pasted = np.asarray(labelled.render())[top : top + 16, left : left + 16]
    assert np.array_equal(pasted, sheets.to_uint8(cells[0][1]).numpy())


def test_reference_grid_layout_labels_and_sidecar(v2_model, tmp_path):
    files = write_sheet(v2_model, "reference_grid", v2_inputs(), tmp_path / "ref").files
    assert [f.name for f in files] == ["ref.png", "ref.json"]
    layout = json.loads(files[1].read_text())
    image = Image.open(files[0])
    assert image.size == (layout["width"], layout["height"])
    assert (layout["rows"], layout["columns"]) == (1 + 3, 1 + 4)  # references row + sources; sources column + refs
    assert layout["row_labels"] == ["reference", "a", "b", "c"]
    assert layout["column_groups"] == ["", "red", "red", "blue", "blue"]
    assert layout["cell"] == {"height": 16, "width": 16} and layout["seed"] == 0 and layout["model"] == "stargan_v2"
    # Labels are drawn: text in the header and in the row-label margin; the corner cell stays blank.
    assert dark_pixels(image, (layout["label_width"], 0, image.width, layout["header_height"])) > 10
    assert dark_pixels(image, (0, layout["header_height"], layout["label_width"], image.height)) > 10
    left, top = layout["label_width"] + PAD, layout["header_height"] + PAD
    assert np.asarray(image)[top : top + 16, left : left + 16].min() == 255
    # Each cell is the source in that reference's style.
    expected = v2_model.translate(v2_inputs().sources[1:2], torch.tensor([2]), reference=v2_inputs().references[3:4])[0]
    left, top = layout["label_width"] + PAD + 4 * (16 + PAD), layout["header_height"] + PAD + 2 * (16 + PAD)
    assert np.array_equal(np.asarray(image)[top : top + 16, left : left + 16], sheets.to_uint8(expected).numpy())


def test_latent_grid_is_the_same_picture_for_the_same_seed(v2_model, tmp_path):
    paths = [write_sheet(v2_model, "latent_grid", v2_inputs(seed=seed), tmp_path / name).files[0]
             for seed, name in ((5, "one"), (5, "two"), (6, "three"))]
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert not np.array_equal(np.asarray(Image.open(paths[0])), np.asarray(Image.open(paths[2])))
    layout = json.loads(paths[0].with_suffix(".json").read_text())
    assert layout["columns"] == 1 + 3 * 2 and layout["column_groups"][1:] == ["red", "red", "green", "green", "blue", "blue"]
    assert layout["column_labels"] == ["source", "z1", "z2", "z1", "z2", "z1", "z2"]


def test_animations_have_the_expected_frames_and_say_when_mp4_is_missing(v2_model, tmp_path, monkeypatch):
    monkeypatch.setattr(sheets, "find_ffmpeg", lambda: None)
    written = write_sheets(v2_model, v2_inputs(), tmp_path, kinds=["reference_animation", "latent_animation"])
    # Loops through each domain's styles: K transitions of `frames` frames for every domain with K >= 2 styles.
    assert Image.open(tmp_path / "reference_animation.gif").n_frames == (2 + 2) * 3  # red and blue, 2 refs each
    assert Image.open(tmp_path / "latent_animation.gif").n_frames == 3 * 2 * 3  # 3 domains x 2 styles
    layout = json.loads((tmp_path / "latent_animation.json").read_text())
    assert layout["frames"] == 18 and layout["frames_per_transition"] == 3
    assert [t["first_frame"] for t in layout["transitions"]] == [0, 3, 6, 9, 12, 15]
    assert not list(tmp_path.glob("*.mp4"))
    assert len(written.notes) == 2 and all("only the GIF was written" in n and "ffmpeg" in n for n in written.notes)


def test_mp4_goes_through_the_ffmpeg_found(v2_model, tmp_path, monkeypatch):
    fake = tmp_path / "ffmpeg"  # records its arguments and writes the output file, as ffmpeg would
    fake.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/args.txt"\ncat > /dev/null\nfor last; do :; done\ntouch "$last"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(sheets, "find_ffmpeg", lambda: str(fake))
    written = write_sheets(v2_model, v2_inputs(), tmp_path / "out", kinds=["latent_animation"])
    assert written.notes == [] and (tmp_path / "out" / "latent_animation.mp4") in written.files
    args = (tmp_path / "args.txt").read_text()
    assert "rawvideo" in args and "yuv420p" in args


def test_reference_kinds_without_references_are_skipped_with_a_note(v2_model, tmp_path):
    inputs = v2_inputs(references=None, reference_domains=None)
    written = write_sheets(v2_model, inputs, tmp_path, kinds=["reference_grid", "latent_grid"])
    assert [f.name for f in written.files] == ["latent_grid.png", "latent_grid.json"]
    assert "--reference" in written.notes[0]


def tiny_stargan(dataset: str, domains: list[str]):
    from ganzoo_stargan.model import StarGAN

    recipe = recipe_from_dict({
        "model": "stargan",
        "networks": {"generator": {"conv_dim": 8, "repeat_num": 1}, "discriminator": {"conv_dim": 8, "repeat_num": 3}},
        "data": {"name": dataset, "image_size": 16, "domains": domains},
    }, check_data=False)
    model = StarGAN(recipe, domains)
    model.build()
    return model


def test_stargan_v1_attribute_models_draw_one_column_per_edit(tmp_path):
    model = tiny_stargan("celeba", ATTRS)
    assert model.sample_sheets == ("target_grid",)
    labels = torch.tensor([[1, 0, 0, 1, 0], [0, 0, 1, 0, 1]])
    inputs = SheetInputs(random_images(2, 3), ["x", "y"], source_labels=labels)
    files = write_sheet(model, "target_grid", inputs, tmp_path / "attrs").files
    layout = json.loads(files[1].read_text())
    assert layout["column_labels"] == ["source", "Black_Hair", "Blond_Hair", "Brown_Hair", "flip Male", "flip Young"]
    # The "flip Male" cell of row y is the official edit of y's own attributes: Male 0 -> 1.
    edited = torch.tensor([[0.0, 0, 1, 1, 1]])
    expected = model.translate(inputs.sources[1:2], edited)[0]
    left, top = layout["label_width"] + PAD + 4 * (16 + PAD), layout["header_height"] + PAD + (16 + PAD)
    assert np.array_equal(np.asarray(Image.open(files[0]))[top : top + 16, left : left + 16], sheets.to_uint8(expected).numpy())


def test_one_hot_cyclegan_and_pix2pix_name_the_targets_they_reach():
    from ganzoo_cyclegan.model import CycleGAN
    from ganzoo_cyclegan.pix2pix import Pix2Pix

    assert [label for label, _ in tiny_stargan("shapes", DOMAINS).sheet_targets()] == DOMAINS
    cyclegan = CycleGAN(load_recipe(ROOT / "recipes" / "cyclegan_shapes.yaml"), ["red", "blue"])
    cyclegan.build(init=False)
    assert cyclegan.sheet_targets() == [("red", 0), ("blue", 1)]
    del cyclegan.nets["generator_b2a"]  # an official one-direction checkpoint
    assert cyclegan.sheet_targets() == [("blue", 1)]
    pix2pix = Pix2Pix(load_recipe(ROOT / "recipes" / "pix2pix_shapes.yaml"), ["red", "blue"])
    assert pix2pix.sheet_targets() == [("blue", 1)]


# --------------------------------------------------------------------------- trainer and CLI


@pytest.fixture(scope="module")
def trained_v2(tmp_path_factory):
    """A tiny StarGAN v2 trained 2 steps by `ganzoo run`, sampling at the last step."""
    tmp = tmp_path_factory.mktemp("sheets")
    recipe = tmp / "tiny.yaml"
    recipe.write_text(yaml.safe_dump({**TINY_V2, "train": {**TINY_V2["train"], "steps": 2, "sample_every": 2}}))
    result = run_cli("run", str(recipe), "--out", str(tmp / "run"), "-q")
    assert result.returncode == 0, result.stderr
    return tmp / "run"


def test_trainer_samples_are_the_models_first_sheet_with_a_sidecar(trained_v2):
    layout = json.loads((trained_v2 / "samples" / "step_00000002.json").read_text())
    assert layout["kind"] == "reference_grid" and layout["step"] == 2
    assert layout["row_labels"][0] == "reference" and set(layout["row_labels"][1:]) <= set(DOMAINS)
    assert Image.open(trained_v2 / "samples" / "step_00000002.png").size == (layout["width"], layout["height"])


def write_png(path: Path, seed: int, size=(24, 20)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)


def test_ganzoo_sample_writes_every_v2_sheet(trained_v2, tmp_path):
    for i, name in enumerate(["cat.png", "dog.png"]):
        write_png(tmp_path / "in" / name, i)
    for i, rel in enumerate(["red/r1.png", "red/r2.png", "blue/b1.png"]):
        write_png(tmp_path / "refs" / rel, 10 + i)
    r = run_cli("sample", str(trained_v2), "--input", str(tmp_path / "in"), "--reference", str(tmp_path / "refs"),
                "--out", str(tmp_path / "out"), "--num", "2", "--frames", "3", "--seed", "3")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    for kind in ("reference_grid", "latent_grid"):
        layout = json.loads((out / f"{kind}.json").read_text())
        assert Image.open(out / f"{kind}.png").size == (layout["width"], layout["height"]) and layout["seed"] == 3
    assert json.loads((out / "reference_grid.json").read_text())["row_labels"] == ["reference", "cat", "dog"]
    assert Image.open(out / "reference_animation.gif").n_frames == 2 * 3  # only red has two references
    assert Image.open(out / "latent_animation.gif").n_frames == 3 * 2 * 3
    if sheets.find_ffmpeg() is None:
        assert "only the GIF was written" in r.stderr and not list(out.glob("*.mp4"))


def test_ganzoo_sample_bad_input_is_one_sentence(trained_v2, tmp_path):
    write_png(tmp_path / "in" / "a.png", 0)
    write_png(tmp_path / "refs" / "blu" / "x.png", 1)
    misspelt = run_cli("sample", str(trained_v2), "-i", str(tmp_path / "in"), "-r", str(tmp_path / "refs"),
                       "-o", str(tmp_path / "o"))
    missing = run_cli("sample", str(trained_v2), "-i", str(tmp_path / "nope.png"), "-o", str(tmp_path / "o"))
    assert misspelt.returncode == 2 and 'Did you mean "blue"?' in misspelt.stderr
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert "Traceback" not in misspelt.stderr + missing.stderr
