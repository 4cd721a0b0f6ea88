"""The second shapes judge (benchmarks/judge_shapes2.py): deterministic, its own segmentation is sound, and it tells a
good translator from bad ones (stand-in models, no training)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ganzoo.data.shapes import FAMILY_HUES, colour_family_of
from ganzoo.errors import GanzooError

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


judge = load_benchmark("judge_shapes2")


def rotate_hue(images: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate (N,3,H,W) [-1,1] colours about the grey axis by ``degrees`` (N,): hue turns, greys and chroma stay."""
    out = []
    for image, angle in zip(images, degrees.tolist()):
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        k = (1 - c) / 3
        r = s / math.sqrt(3)  # Rodrigues' rotation about (1,1,1)/sqrt(3)
        matrix = torch.tensor([[c + k, k - r, k + r], [k + r, c + k, k - r], [k - r, k + r, c + k]])
        out.append(torch.einsum("ij,jhw->ihw", matrix, image).clamp(-1, 1))
    return torch.stack(out)


class StandIn:
    """A 'model' at 32 px: ``recolour`` turns each source's hue to the target family's (the oracle), then
    ``spoil`` may damage the result."""

    def __init__(self, domains=("red", "green", "blue"), spoil=None):
        self.domains = list(domains)
        self.image_size = 32
        self.spoil = spoil
        self.sizes_seen = set()

    def translate(self, images, target, *, generator=None):
        self.sizes_seen.add(tuple(images.shape[-2:]))
        sources = [FAMILY_HUES[colour_family_of(x, families=self.domains)] for x in images]
        turn = torch.tensor([FAMILY_HUES[self.domains[t]] - h for t, h in zip(target.tolist(), sources)])
        out = rotate_hue(images, turn)
        return out if self.spoil is None else self.spoil(out)


def blur_to_blob(images):
    """Object edges smeared over ~9 px at 32 px: squares and bars come back as rounded blobs."""
    return F.avg_pool2d(F.pad(images, (4, 4, 4, 4), mode="replicate"), 9, stride=1)


def uncoloured(images):
    return images.mean(dim=1, keepdim=True).expand_as(images)


def test_renderer_is_deterministic_and_draws_every_kind():
    a = judge.render_set(["red", "green", "blue"], num=24, size=64, seed=3)
    b = judge.render_set(["red", "green", "blue"], num=24, size=64, seed=3)
    assert torch.equal(a["images"], b["images"]) and torch.equal(a["masks"], b["masks"])
    assert not torch.equal(a["images"], judge.render_set(["red", "green", "blue"], num=24, size=64, seed=4)["images"])
    assert set(a["kinds"]) == set(judge.KINDS) and a["images"].shape == (24, 3, 64, 64)
    assert a["images"].min() >= -1 and a["images"].max() <= 1
    assert judge.render(5, 48, "cyan")["image"].shape == (3, 48, 48)
    # every item has its family's colour and a sizeable object
    for image, mask, label in zip(a["images"], a["masks"], a["labels"]):
        assert colour_family_of(image, mask) == ["red", "green", "blue"][label]
        assert 0.03 < mask.float().mean() < 0.6


def test_ground_truth_segmentation_matches_true_masks():
    """foreground_mask on the untranslated judge images vs their true masks: else the judge measures itself."""
    assert judge.ground_truth_iou(["red", "green", "blue"], num=150, size=64) >= 0.95
    assert judge.ground_truth_iou(list(FAMILY_HUES), num=48, size=64) >= 0.95


def test_oracle_scores_high_and_goes_through_the_resize_path():
    model = StandIn()
    result = judge.evaluate_model(model, num=48)
    assert model.sizes_seen == {(32, 32)}  # 64 px inputs translated at the model's size
    assert result["colour_accuracy"] == 1.0 and result["mean_iou"] > 0.85
    assert result["translations"] == 48 * 2 and set(result["mean_iou_by_kind"]) == set(judge.KINDS)
    assert result["ground_truth_iou"] >= 0.95
    assert abs(result["resized_source_iou"] - result["mean_iou"]) < 0.02  # recolouring keeps what the resize kept


def test_blurred_blobs_and_uncoloured_outputs_score_low():
    oracle = judge.evaluate_model(StandIn(), num=48)
    blobs = judge.evaluate_model(StandIn(spoil=blur_to_blob), num=48)
    assert blobs["mean_iou"] < oracle["mean_iou"] - 0.15
    # thin objects lose the most: the per-kind means show which shapes are damaged
    assert blobs["mean_iou_by_kind"]["thin_bar"] < blobs["mean_iou_by_kind"]["ellipse"] - 0.2
    grey = judge.evaluate_model(StandIn(spoil=uncoloured), num=48)
    assert grey["colour_accuracy"] == 0.0 and grey["mean_iou"] < 0.05


def test_two_domain_models_only_target_the_other_domain():
    result = judge.evaluate_model(StandIn(domains=("orange", "purple")), num=16)
    assert result["translations"] == 16 and result["colour_accuracy"] == 1.0


def test_refuses_domains_that_are_not_colour_families():
    with pytest.raises(GanzooError, match="colour-family domains"):
        judge.evaluate_model(StandIn(domains=("cat", "dog")), num=4)
