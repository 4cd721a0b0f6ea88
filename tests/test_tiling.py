"""Large images in ``ganzoo translate`` (ganzoo/tiling.py): the input's own size for fully convolutional families
(``--keep-size``, padded to the declared stride multiple), resizing for the others, and overlapping tiles (``--tile``)
that equal the untiled output for a network whose receptive field fits in the tiles' blending margin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from families import tiny_recipe
from ganzoo.tiling import blend_ramp, pad_to_multiple, run_padded, run_tiled, tile_starts


def local_network(seed: int = 0) -> nn.Module:
    """Convolutions only (zero padding, no norm), one stride-2 level: the receptive field reaches 8 pixels from its
    centre (3x3 conv: 1, 4x4/2 conv: +2, 3x3 at half size: +2, 4x4/2 transposed: +2, 3x3: +1)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 4, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1),
                         nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1), nn.Tanh()).eval()


@pytest.mark.parametrize("height, width, tile", [(1024, 1024, 384), (301, 222, 128)])
def test_tiles_equal_the_whole_image_for_a_network_whose_receptive_field_fits_the_margin(height, width, tile):
    """1024 px (and a size that is no multiple of anything) on CPU: tiles overlapping by 64 px blend only pixels at
    least 64 // 4 = 16 px inside a tile, more than the network's reach of 8 px, so tiled and whole agree to float
    rounding (1e-5) everywhere, seams included; and the output has the input's size."""
    net = local_network()
    image = torch.rand(1, 3, height, width) * 2 - 1
    with torch.no_grad():
        whole = run_padded(net, image, 2)
        tiled = run_tiled(net, image, 2, tile=tile, overlap=64)
    assert tiled.shape == whole.shape == image.shape
    assert (tiled - whole).abs().max() < 1e-5


def test_a_margin_smaller_than_the_receptive_field_shows_at_the_seams():
    """The same network with 8 px overlaps (2 px margin): tiles differ near seams, so the check above can fail."""
    net = local_network()
    image = torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        error = (run_tiled(net, image, 2, tile=64, overlap=8) - run_padded(net, image, 2)).abs().amax(dim=(0, 1))
    assert error.max() > 1e-3
    assert error[100:110, 5:50].max() < 1e-5  # away from every seam (tiles start at 0, 56 and 64) it is exact


def test_tile_layout_and_blend_weights():
    assert tile_starts(1024, 512, 384) == [0, 384, 512]
    assert tile_starts(300, 512, 384) == [0]
    ramp = blend_ramp(64, 32, lead=True, trail=True)
    assert torch.all(ramp[:8] == 0) and torch.all(ramp[-8:] == 0) and torch.all(ramp[24:40] == 1)
    assert torch.all(ramp[8:24].diff() > 0)
    # two neighbours overlapping by 32 px: weights sum to a positive value across the overlap
    lead, trail = blend_ramp(64, 32, True, False), blend_ramp(64, 32, False, True)
    assert torch.all(trail[32:] + lead[:32] > 0)
    assert pad_to_multiple(torch.zeros(1, 3, 10, 13), 4).shape[-2:] == (12, 16)
    assert pad_to_multiple(torch.zeros(1, 3, 2, 2), 8).shape[-2:] == (8, 8)  # too small to reflect: replicated


def tiny_model(name: str, domains: list[str]):
    from ganzoo.plugins import get_registry

    torch.manual_seed(0)
    model = get_registry().get("models", name)(tiny_recipe(name), domains)
    model.build()
    return model


@pytest.mark.parametrize("name, any_size, domains", [("cyclegan", True, ["a", "b"]), ("pix2pix", True, ["a", "b"]),
                                                     ("stargan", True, ["red", "green", "blue"]),
                                                     ("stargan_v2", False, ["red", "green", "blue"])])
def test_families_declare_whether_they_translate_at_any_size(name, any_size, domains):
    """Fully convolutional families declare the AnySizeModel capability and their stride multiple; translate then
    returns an image of the (padded) input's size, not the training size."""
    from ganzoo.api import AnySizeModel

    model = tiny_model(name, domains)
    assert isinstance(model, AnySizeModel) == any_size
    if not any_size:
        return
    multiple = model.size_multiple()
    size = model.image_size
    x = torch.rand(1, 3, 3 * multiple, 5 * multiple) * 2 - 1 if multiple < size else torch.rand(1, 3, multiple, 2 * multiple) * 2 - 1
    y = model.translate(x, torch.tensor([1]), generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape


def invoke(*args: str):
    from typer.testing import CliRunner

    from ganzoo.cli import app

    return CliRunner().invoke(app, list(args))


def write_png(path: Path, height: int, width: int) -> Path:
    """Colour ramps with a little noise (smooth: a 1024 px PNG encodes quickly)."""
    y, x = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(0).integers(0, 16, (height, width))
    pixels = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y + noise) % 256], axis=-1)
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiling-models")
    return {"cyclegan": tiny_model("cyclegan", ["day", "night"]).save_pretrained(root / "cg"),
            "stargan_v2": tiny_model("stargan_v2", ["red", "green"]).save_pretrained(root / "v2")}


def test_cli_keep_size_and_tiles_on_a_1024_px_input(folders, tmp_path):
    """CycleGAN (tiny, CPU) at the input's own size: an odd 50x38 input comes back 50x38 (padded to 4 and cropped);
    a 1024 px input in 384 px tiles (9 of them) comes back 1024 px. Instance norm is image-wide, so tiles are not expected to equal
    the whole image here (see the README); the blend must still not leave holes or NaN."""
    small = write_png(tmp_path / "odd.png", 38, 50)
    result = invoke("translate", str(folders["cyclegan"]), "-i", str(small), "-t", "night", "-o", str(tmp_path / "ks"),
                    "--keep-size", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "ks" / "odd.png").size == (50, 38)
    big = write_png(tmp_path / "big.png", 1024, 1024)
    result = invoke("translate", str(folders["cyclegan"]), "-i", str(big), "-t", "night", "-o", str(tmp_path / "tiles"),
                    "--tile", "384", "--tile-overlap", "64", "--device", "cpu")
    assert result.exit_code == 0, result.output
    out = np.asarray(Image.open(tmp_path / "tiles" / "big.png"))
    assert out.shape == (1024, 1024, 3) and out.std() > 0


def test_cli_fixed_size_models_resize_and_say_so(folders, tmp_path):
    """StarGAN v2 translates at its training size: --keep-size resizes the output back (one line says so), --tile is
    refused in one sentence with exit code 2."""
    image = write_png(tmp_path / "wide.png", 40, 72)
    result = invoke("translate", str(folders["stargan_v2"]), "-i", str(image), "-t", "green", "-o", str(tmp_path / "o"),
                    "--keep-size", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "translates at its training size only" in " ".join(result.output.split())
    assert Image.open(tmp_path / "o" / "wide.png").size == (72, 40)
    result = invoke("translate", str(folders["stargan_v2"]), "-i", str(image), "-t", "green", "-o", str(tmp_path / "t"),
                    "--tile", "64", "--device", "cpu")
    assert result.exit_code == 2 and "cannot be tiled" in result.output and not (tmp_path / "t").exists()
    result = invoke("translate", str(folders["cyclegan"]), "-i", str(image), "-t", "night", "-o", str(tmp_path / "t"),
                    "--tile", "64", "--tile-overlap", "64", "--device", "cpu")
    assert result.exit_code == 2 and "--tile-overlap 64" in result.output


def test_stargan_attribute_edits_at_the_inputs_own_size():
    """StarGAN v1 on CelebA-style attributes at 40x24 (not its 16 px): D reads the source attributes from a copy
    resized to 16 px (its last conv spans exactly that), and the generator translates at 40x24."""
    from ganzoo.recipe import recipe_from_dict
    from ganzoo_stargan.model import StarGAN

    names = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
    recipe = recipe_from_dict({"model": "stargan", "data": {"name": "celeba", "image_size": 16, "domains": names},
                               "networks": {"generator": {"conv_dim": 8, "repeat_num": 1},
                                            "discriminator": {"conv_dim": 8, "repeat_num": 3}}}, check_data=False)
    torch.manual_seed(0)
    model = StarGAN(recipe, names)
    model.build()
    x = torch.rand(1, 3, 24, 40) * 2 - 1
    small = torch.nn.functional.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False, antialias=True)
    assert torch.equal(model.attribute_target(x, "Young"), model.attribute_target(small, "Young"))
    target = model.attribute_target(x, "Blond_Hair")
    assert model.translate(x, target).shape == x.shape
