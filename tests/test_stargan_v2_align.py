"""``ganzoo align-faces``: the official alignment geometry (core/wing.py FaceAligner) and the command.

The geometry is checked with a synthetic face whose landmarks are known (marked as coloured dots): after
alignment the dots sit on the mean layout. The command runs with a random-weight FAN (no real weights exist
here), so what it can show is the plumbing: files written, faces skipped with a count, bad input refused.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from ganzoo_stargan_v2.align import SCALE_POINTS, align, align_folder, similarity


def mean_layout() -> np.ndarray:
    """A face-like 98-point layout in a 256 px image: outline, brows, nose, eyes (60-75), mouth (76-95), pupils."""
    rng = np.random.default_rng(0)
    points = rng.uniform(90, 170, size=(98, 2))
    points[60:68] = [100, 110] + rng.uniform(-6, 6, (8, 2))   # left eye
    points[68:76] = [156, 110] + rng.uniform(-6, 6, (8, 2))   # right eye
    points[96], points[97] = [100, 110], [156, 110]           # pupils
    points[76], points[82] = [108, 180], [148, 180]           # mouth corners
    return points


def moved(points: np.ndarray, angle: float, scale: float, shift) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    centre = points.mean(0)
    return (points - centre) @ np.array([[c, s], [-s, c]]) * scale + centre + np.asarray(shift)


def dot_image(points: np.ndarray, size: int = 256) -> torch.Tensor:
    """Grey image with a red, green, blue and white 5x5 dot at the pupils and mouth corners."""
    x = torch.full((3, size, size), -0.2)
    colours = [(1, -1, -1), (-1, 1, -1), (-1, -1, 1), (1, 1, 1)]
    for idx, colour in zip(SCALE_POINTS, colours):
        cx, cy = (int(round(v)) for v in points[idx])
        x[:, cy - 2:cy + 3, cx - 2:cx + 3] = torch.tensor(colour, dtype=torch.float32).view(3, 1, 1)
    return x


def find_dots(x: torch.Tensor) -> np.ndarray:
    found = []
    for colour in [(1, -1, -1), (-1, 1, -1), (-1, -1, 1), (1, 1, 1)]:
        distance = (x - torch.tensor(colour, dtype=torch.float32).view(3, 1, 1)).abs().sum(0)
        ys, xs = torch.nonzero(distance < 0.6, as_tuple=True)
        found.append([xs.float().mean().item(), ys.float().mean().item()])
    return np.array(found)


def test_similarity_takes_a_rotated_scaled_face_onto_the_mean_layout():
    mean = mean_layout()
    source = moved(mean, angle=0.3, scale=0.7, shift=(20, -15))
    matrix = similarity(source, mean)
    mapped = np.c_[source, np.ones(98)] @ matrix.T
    np.testing.assert_allclose(mapped[:, :2], mean, atol=1e-6)


def test_aligned_dots_move_onto_the_mean_layout():
    mean = mean_layout()
    source = moved(mean, angle=-0.35, scale=0.75, shift=(-12, 18))
    image = dot_image(source)
    before = np.abs(find_dots(image) - mean[SCALE_POINTS]).max()
    out = align(image, source, mean, 256)
    after = np.abs(find_dots(out) - mean[SCALE_POINTS]).max()
    assert out.shape == (3, 256, 256)
    assert before > 15 and after < 1.5


def test_align_folder_counts_skipped_images_and_never_crashes(tmp_path):
    mean = mean_layout()
    source = moved(mean, angle=0.2, scale=0.8, shift=(5, 5))
    src = tmp_path / "in"
    src.mkdir()
    pixels = ((dot_image(source) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(pixels).save(src / "face.png")
    Image.fromarray(np.full((256, 256, 3), 200, np.uint8)).save(src / "wall.png")
    (src / "broken.jpg").write_bytes(b"not an image")

    def detect(images):  # a stand-in landmark detector: a face where there are red pixels
        has_face = bool((images[0, 0] > 0.9).any())
        return source[None], np.array([1.0 if has_face else 0.0])

    written, skipped = align_folder(src, tmp_path / "out", detect, mean, size=256)
    assert written == 1 and skipped == {"unreadable": 1, "no face found": 1}
    out = torch.from_numpy(np.array(Image.open(tmp_path / "out" / "face.png"))).permute(2, 0, 1).float() / 127.5 - 1
    assert np.abs(find_dots(out) - mean[SCALE_POINTS]).max() < 2.0


def test_align_faces_command_with_a_fan(tmp_path):
    from typer.testing import CliRunner

    from ganzoo.cli import app
    from ganzoo_stargan_v2.fan import FAN

    torch.manual_seed(0)
    save_file({k: v.contiguous() for k, v in FAN().state_dict().items()}, str(tmp_path / "fan.safetensors"))
    np.savez(tmp_path / "mean.npz", mean=mean_layout())
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(src / "a.png")
    (src / "b.jpg").write_bytes(b"broken")
    base = ["align-faces", str(src), str(tmp_path / "out"), "--fan", str(tmp_path / "fan.safetensors"),
            "--mean", str(tmp_path / "mean.npz"), "--size", "64"]
    result = CliRunner().invoke(app, base + ["--min-confidence", "1e9"])
    assert result.exit_code == 0, result.output
    assert "aligned 0 image(s)" in result.output and "skipped 2 (1 unreadable, 1 no face found)" in result.output

    result = CliRunner().invoke(app, base + ["--min-confidence", "-1e9"])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    # this random FAN's landmarks (seed 0) give a finite transform, so the image is written
    assert written == ["a.png"] and Image.open(tmp_path / "out" / "a.png").size == (64, 64)
    assert "aligned 1 image(s)" in result.output and "skipped 1 (1 unreadable)" in result.output

    np.savez(tmp_path / "bad.npz", mean=np.zeros((5, 2)))
    bad = CliRunner().invoke(app, base[:-4] + ["--mean", str(tmp_path / "bad.npz")])
    assert bad.exit_code == 2 and "not 98 x 2" in bad.output


@pytest.mark.parametrize("missing", ["mean", "fan"])
def test_align_faces_names_a_missing_file(tmp_path, missing):
    from typer.testing import CliRunner

    from ganzoo.cli import app

    np.savez(tmp_path / "mean.npz", mean=mean_layout())
    (tmp_path / "in").mkdir()
    args = ["align-faces", str(tmp_path / "in"), str(tmp_path / "out"),
            "--fan", str(tmp_path / ("nofan.ckpt" if missing == "fan" else "fan.ckpt")),
            "--mean", str(tmp_path / ("none.npz" if missing == "mean" else "mean.npz"))]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert ("celeba_lm_mean.npz" if missing == "mean" else "does not exist") in result.output
