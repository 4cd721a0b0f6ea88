"""The shapes set's ``variety``: "classic" (what the judge's held-out images are) and "wide" (for training
models meant for images this module did not draw)."""

from __future__ import annotations

import pytest
import torch

from ganzoo.data.shapes import SHAPES, ShapesDataset, foreground_mask
from ganzoo.errors import DataError


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a & b).sum() / (a | b).sum()).item()


def test_classic_is_the_default_and_wide_draws_other_images_deterministically():
    classic, default = ShapesDataset(variety="classic", image_size=32), ShapesDataset(image_size=32)
    wide, again = ShapesDataset(variety="wide", image_size=32), ShapesDataset(variety="wide", image_size=32)
    for i in range(20):
        assert torch.equal(classic.load(i), default.load(i))
        assert torch.equal(wide.load(i), again.load(i))
    assert sum(not torch.equal(classic.load(i), wide.load(i)) for i in range(20)) >= 18


def test_wide_outlines_are_not_only_the_nine_classic_ones_and_reach_smaller_objects():
    wide, classic = ShapesDataset(variety="wide", image_size=32), ShapesDataset(image_size=32)
    wide_areas = [wide.mask(i).float().mean().item() for i in range(200)]
    classic_areas = [classic.mask(i).float().mean().item() for i in range(200)]
    assert min(wide_areas) < 0.1 < min(classic_areas)
    assert len(SHAPES) == 9  # the classic kinds: the wide set adds random polygons and stretches on top


def test_wide_backgrounds_are_noisier_but_the_saturation_cut_still_finds_the_object():
    wide, classic = ShapesDataset(variety="wide", image_size=32), ShapesDataset(image_size=32)

    def background_spread(ds) -> float:
        spreads = []
        for i in range(40):
            image, mask = ds.load(i), ds.mask(i)
            spreads.append(image.mean(0)[~mask].std().item())
        return sum(spreads) / len(spreads)

    assert background_spread(wide) > 1.5 * background_spread(classic)
    ious = [_iou(foreground_mask(wide.load(i)), wide.mask(i)) for i in range(100)]
    assert sum(ious) / len(ious) >= 0.95


def test_an_unknown_variety_is_one_sentence_naming_the_choices():
    with pytest.raises(DataError, match=r'Unknown shapes variety "wid" in data.variety.*wide'):
        ShapesDataset(variety="wid")
