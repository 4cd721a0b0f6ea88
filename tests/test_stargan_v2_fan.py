"""StarGAN v2's FAN (official core/wing.py layout) and its CelebA-HQ face masks.

Facts copied from the official code (clovaai/stargan-v2, core/wing.py), as data the test owns:
the FAN's parameter count, state-dict size and a sample of its key shapes, and the mask rules
(which landmark channels move up or down by how many rows, which are raised to which power,
which are zeroed, which the second mask drops).
"""

from __future__ import annotations

import pytest
import torch

from ganzoo_stargan_v2.fan import FAN, face_masks, heatmap_peaks

# official FAN (num_modules=1, 98 landmarks), random init
FAN_PARAMS = 6_333_603
FAN_STATE_TENSORS = 336
FAN_SHAPES = {
    "conv1.conv.weight": (64, 6, 7, 7),  # 3 colours + row, column, radius
    "conv2.downsample.2.weight": (128, 64, 1, 1),
    "conv4.conv3.weight": (64, 64, 3, 3),
    "m0.coordconv.conv.weight": (256, 259, 1, 1),  # no boundary channels in the first hourglass
    "m0.b2_plus_1.conv1.weight": (128, 256, 3, 3),
    "m0.b3_4.bn3.running_var": (64,),
    "bn_end0.num_batches_tracked": (),
    "l0.weight": (99, 256, 1, 1),
}
FAN_FIRST_KEYS = ["conv1.conv.weight", "conv1.conv.bias", "bn1.weight", "bn1.bias", "bn1.running_mean",
                  "bn1.running_var", "bn1.num_batches_tracked", "conv2.bn1.weight"]
HOURGLASS_ORDER = ["b1_4", "b2_4", "b1_3", "b2_3", "b1_2", "b2_2", "b1_1", "b2_1", "b2_plus_1",
                   "b3_1", "b3_2", "b3_3", "b3_4"]


def assert_near(actual: torch.Tensor, expected: torch.Tensor, atol: float) -> None:
    """Largest absolute difference at most ``atol`` (torch.testing's first call imports for seconds)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    diff = (actual.float() - expected.float()).abs().max().item()
    assert diff <= atol, f"largest difference {diff:.3g} > {atol:g}"


def test_fan_has_the_official_state_dict_layout():
    fan = FAN()
    state = fan.state_dict()
    assert sum(p.numel() for p in fan.parameters()) == FAN_PARAMS
    assert len(state) == FAN_STATE_TENSORS
    assert list(state)[: len(FAN_FIRST_KEYS)] == FAN_FIRST_KEYS
    for key, shape in FAN_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    blocks = list(dict.fromkeys(k.split(".")[1] for k in state if k.startswith("m0.") and "coordconv" not in k))
    assert blocks == HOURGLASS_ORDER
    # BatchNorm everywhere with running statistics: 3 buffers per BatchNorm
    assert len(list(fan.buffers())) == 3 * sum(isinstance(m, torch.nn.BatchNorm2d) for m in fan.modules())


def test_fan_is_frozen_and_stays_in_eval_mode():
    fan = FAN()
    assert not any(p.requires_grad for p in fan.parameters())
    fan.train()
    assert not fan.training and not any(m.training for m in fan.modules())
    before = {k: v.clone() for k, v in fan.state_dict().items()}
    fan(torch.rand(1, 3, 256, 256))
    assert all(torch.equal(before[k], v) for k, v in fan.state_dict().items())  # running stats untouched
    out = fan(torch.rand(1, 3, 256, 256))
    assert out.shape == (1, 99, 64, 64)


# --------------------------------------------------------------------------- the mask rules

H, W = 256, 48  # 256 rows: the official shifts are for 256 px heatmaps; the width does not matter
COL_A, COL_B = 10, 40
ROW = 120  # peaks well inside, so no shift wraps around


def single_landmark(channel: int, n_channels: int = 98) -> torch.Tensor:
    """Heatmaps with one landmark: value 1 at (ROW, COL_A) and 0.5 at (ROW, COL_B); every other channel 0."""
    x = torch.zeros(1, n_channels, H, W)
    x[0, channel, ROW, COL_A] = 1.0
    x[0, channel, ROW, COL_B] = 0.5
    return x


# channel -> (rows moved down (negative = up), power, kept in the second mask); official core/wing.py
RULES = {
    10: (0, 3, False),     # face line (chin): cubed, not in mask 2
    40: (7, 2, False),     # eyebrow: 7 rows down, squared, not in mask 2
    51: (0, 1, True),      # nose, first point: untouched
    53: (-4, 1, True),     # nose: 4 rows up
    57: (-8, 4, True),     # nostrils: 8 rows up, power 4
    78: (8, 4, False),     # upper lip: 8 rows down, power 4, mouth not in mask 2
    85: (-8, 4, False),    # lower lip: 8 rows up, power 4
    90: (2, 3, False),     # inner lip: 2 rows down, cubed
    96: (0, 1, True),      # pupils: untouched
    97: (0, 1, True),
}
ZEROED = [0, 7, 25, 32, 33, 46, 76, 82]  # face-line ends, eyebrow edges, mouth corners


@pytest.mark.parametrize("channel", sorted(RULES))
def test_each_part_is_moved_and_raised_as_official(channel):
    down, power, in_second = RULES[channel]
    mask, mask2 = face_masks(single_landmark(channel))
    assert mask.shape == mask2.shape == (1, 1, H, W)
    expected = torch.zeros(H, W)
    expected[ROW + down, COL_A] = 1.0
    expected[ROW + down, COL_B] = 0.5**power
    assert_near(mask[0, 0], expected, 1e-5)
    assert_near(mask2[0, 0], expected if in_second else torch.zeros(H, W), 1e-5)


def test_eyes_are_a_cubed_copy_8_rows_down_plus_a_copy_24_rows_down():
    mask, mask2 = face_masks(single_landmark(65))
    expected = torch.zeros(H, W)
    expected[ROW + 8, COL_A] += 1.0
    expected[ROW + 24, COL_A] += 1.0
    expected[ROW + 8, COL_B] += 0.5**3
    expected[ROW + 24, COL_B] += 0.5
    assert_near(mask[0, 0], expected, 1e-5)
    assert_near(mask2[0, 0], expected, 1e-5)


@pytest.mark.parametrize("channel", ZEROED)
def test_zeroed_landmarks_leave_no_trace(channel):
    mask, mask2 = face_masks(single_landmark(channel))
    assert mask.abs().max() == 0 and mask2.abs().max() == 0


def test_truncation_min_max_normalisation_and_clamp():
    x = torch.zeros(1, 98, H, W)
    x[0, 96, 10, 10] = 5.0     # normalised to 1 (min-max per heatmap)
    x[0, 96, 10, 20] = 0.4     # 0.4 / 5 = 0.08 after normalising, but truncation acts first: 0.4 >= 0.1 stays
    x[0, 96, 10, 30] = 0.09    # below 0.1: truncated before normalising
    x[0, 97, 10, 10] = 2.0     # a second landmark on the same pixel: the sum is clamped to 1
    x[0, 97, 50, 40] = -3.0    # negative values are truncated to 0, so they do not shift the minimum
    mask, _ = face_masks(x)
    assert mask[0, 0, 10, 10] == 1.0
    assert mask[0, 0, 10, 20] == pytest.approx(0.4 / 5.0, abs=1e-5)
    assert mask[0, 0, 10, 30] == 0 and mask[0, 0, 50, 40] == 0
    x[0, 96, 0, 0] = float("nan")
    mask, mask2 = face_masks(x)
    assert not torch.isnan(mask).any() and not torch.isnan(mask2).any()


def test_shifts_scale_with_the_heatmap_size():
    # at 512 px the part shifts double (official sw = H // 256); the eyes' 8 / 24 do not
    x = torch.zeros(1, 98, 512, 16)
    x[0, 57, 200, 10] = 1.0
    mask, _ = face_masks(x)
    assert mask[0, 0, 200 - 16, 10] == pytest.approx(1.0, abs=1e-5)


def test_get_heatmap_resizes_to_256_and_maps_to_unit_range():
    torch.manual_seed(0)
    fan = FAN()
    seen = []
    fan.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    mask, mask2 = fan.get_heatmap(x)
    assert mask.shape == mask2.shape == (2, 1, 256, 256)
    assert seen[0].shape == (2, 3, 256, 256)
    assert seen[0].min() >= 0 and seen[0].max() <= 1
    assert 0 <= mask.min() and mask.max() <= 1


def test_heatmap_peaks_find_the_landmark_with_quarter_pixel_refinement():
    hm = torch.zeros(1, 2, 64, 64)
    hm[0, 0, 20, 30] = 1.0
    hm[0, 0, 20, 31] = 0.5   # right neighbour higher -> +0.25 in x
    hm[0, 0, 19, 30] = 0.5   # upper neighbour higher -> -0.25 in y
    hm[0, 1, 0, 5] = 1.0     # on the border: no refinement
    peaks = heatmap_peaks(hm)
    assert_near(peaks[0, 0], torch.tensor([30 + 1 + 0.25 - 0.5, 20 + 1 - 0.25 - 0.5]), 1e-6)
    assert_near(peaks[0, 1], torch.tensor([5 + 1 - 0.5, 0 + 1 - 0.5]), 1e-6)
