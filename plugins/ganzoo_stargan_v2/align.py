"""``ganzoo align-faces``: warp photos of faces to the CelebA-HQ landmark layout, so the CelebA-HQ model (whose
FAN masks and training data assume aligned faces) can translate them. The official ``--mode align``.

Geometry as the official ``FaceAligner`` (clovaai/stargan-v2, core/wing.py): the FAN's 98 landmarks; an "x axis"
from the eye centres and mouth corners; a similarity transform = move the landmarks' mean to the origin, rotate
that axis onto the mean layout's, scale by the mean distance ratio of pupils and mouth corners to the landmarks'
mean, move to the mean layout's mean; the image mirror-padded by half its size first so the warp has pixels
to draw on. Differences: bilinear sampling (official: Lanczos), and the padded border is a plain reflection
(the official blends it with a blurred copy).

The mean layout is the official ``celeba_lm_mean.npz`` (key ``mean``: 98 x 2, pixels of a 256 px image). It is
part of the CC BY-NC 4.0 release and is not shipped here: download it with the official ``download.sh``
(``pretrained-network-celeba-hq``) and pass it with ``--mean``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganzoo.api import DataError, GanzooError

EYE_LEFT = [*range(60, 68), 96]
EYE_RIGHT = [*range(68, 76), 97]
MOUTH_LEFT, MOUTH_RIGHT = 76, 82
SCALE_POINTS = [96, 97, 76, 82]  # pupils and mouth corners


def load_mean_layout(path: str | Path) -> np.ndarray:
    """The 98 x 2 mean landmark layout (256 px) from an ``.npz`` (key ``mean``, read without pickle)."""
    path = Path(path)
    if not path.is_file():
        raise GanzooError(f"Mean landmark file {path} does not exist; download the official celeba_lm_mean.npz "
                          "(clovaai/stargan-v2 download.sh pretrained-network-celeba-hq) and pass it with --mean.")
    try:
        with np.load(path, allow_pickle=False) as data:
            mean = np.asarray(data["mean"], dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same sentence
        raise GanzooError(f"{path} is not an .npz with a 'mean' array of 98 x 2 landmarks ({type(exc).__name__}); "
                          "pass the official celeba_lm_mean.npz.") from None
    if mean.shape != (98, 2) or not np.isfinite(mean).all():
        raise GanzooError(f"{path}: 'mean' has shape {mean.shape}, not 98 x 2 finite landmarks; pass the official "
                          "celeba_lm_mean.npz.")
    return mean


def x_axis(landmarks: np.ndarray) -> np.ndarray:
    """Unit face "x axis": eye-to-eye vector minus the eye-centre-to-mouth-centre vector turned by 90 degrees."""
    left, right = landmarks[EYE_LEFT].mean(0), landmarks[EYE_RIGHT].mean(0)
    mouth = (landmarks[MOUTH_LEFT] + landmarks[MOUTH_RIGHT]) / 2
    across = right - left
    up = (left + right) / 2 - mouth
    axis = across - np.array([up[1], -up[0]])
    return axis / np.linalg.norm(axis)


def similarity(landmarks: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """3 x 3 matrix taking ``landmarks`` (98 x 2, pixels) onto the ``mean`` layout (official ``landmarks2mat``)."""
    a, b = x_axis(landmarks), x_axis(mean)
    cos = float(np.clip(a @ b, -1.0, 1.0))
    sin = math.sqrt(max(0.0, 1.0 - cos * cos)) * float(np.sign(a[0] * b[1] - a[1] * b[0]))
    rotate = np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])
    src_mean, dst_mean = landmarks.mean(0), mean.mean(0)
    ratio = np.linalg.norm(mean - dst_mean, axis=1) / np.linalg.norm(landmarks - src_mean, axis=1)
    scale = np.diag([ratio[SCALE_POINTS].mean()] * 2 + [1.0])
    to_origin, to_mean = np.eye(3), np.eye(3)
    to_origin[:2, 2] = -src_mean
    to_mean[:2, 2] = dst_mean
    return to_mean @ scale @ rotate @ to_origin


def warp(image: torch.Tensor, matrix: np.ndarray, size: int) -> torch.Tensor:
    """``image`` (3, H, W) drawn through ``matrix`` (source pixel -> output pixel) into (3, size, size)."""
    inverse = torch.tensor(np.linalg.inv(matrix), dtype=torch.float32)
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
    points = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1) @ inverse.T
    _, h, w = image.shape
    grid = torch.stack([(2 * points[..., 0] + 1) / w - 1, (2 * points[..., 1] + 1) / h - 1], dim=-1)
    return F.grid_sample(image[None], grid[None], mode="bilinear", padding_mode="border", align_corners=False)[0]


def align(image: torch.Tensor, landmarks: np.ndarray, mean: np.ndarray, size: int) -> torch.Tensor:
    """``image`` (3, size, size) whose ``landmarks`` (98 x 2, its pixels) are warped onto ``mean`` (256 px layout)."""
    _, h, w = image.shape
    padded = F.pad(image[None], (w // 2, w // 2, h // 2, h // 2), mode="reflect")[0]
    matrix = similarity(landmarks + np.array([w // 2, h // 2]), mean * (size / 256))
    return warp(padded, matrix, size)


class FanLandmarks:
    """98 landmarks of (N, 3, S, S) images in [-1, 1] with the FAN (official ``get_landmark``), and how sure it
    is: the median over landmarks of the heatmap peak (a face gives peaks near 1)."""

    def __init__(self, fan):
        self.fan = fan

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        from ganzoo_stargan_v2.fan import FAN_SIZE, heatmap_peaks

        x = F.interpolate(images.float(), size=FAN_SIZE, mode="bilinear")
        heatmaps = self.fan(x * 0.5 + 0.5)[:, :-1]
        peaks = heatmap_peaks(heatmaps) * (images.size(2) // heatmaps.size(2))
        confidence = heatmaps.flatten(2).max(dim=2).values.median(dim=1).values
        return peaks.cpu().numpy().astype(np.float64), confidence.cpu().numpy()


def align_folder(input_dir: Path, output_dir: Path, detect, mean: np.ndarray, *, size: int = 256,
                 min_confidence: float = 0.2) -> tuple[int, dict[str, int]]:
    """Align every image of ``input_dir`` into ``output_dir`` (same names, PNG); returns (written, skipped by why)."""
    from PIL import Image

    from ganzoo.api import list_images, read_image, resize, to_tensor

    if not input_dir.is_dir():
        raise DataError(f'Input folder "{input_dir}" does not exist; pass a folder of face photos.')
    files = list_images(input_dir)
    if not files:
        raise DataError(f'Input folder "{input_dir}" holds no images (jpg, png, ...).')
    output_dir.mkdir(parents=True, exist_ok=True)
    written, skipped = 0, {"unreadable": 0, "no face found": 0}
    for path in files:
        try:
            x = resize(to_tensor(read_image(path)), size)
        except Exception:  # noqa: BLE001 - one bad file is counted, never a crash
            skipped["unreadable"] += 1
            continue
        landmarks, confidence = detect(x[None])
        if not float(confidence[0]) >= min_confidence:
            skipped["no face found"] += 1
            continue
        try:
            out = align(x, landmarks[0], mean, size)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            skipped["no face found"] += 1
            continue
        if not torch.isfinite(out).all():
            skipped["no face found"] += 1
            continue
        pixels = ((out.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(pixels).save(output_dir / (path.stem + ".png"))
        written += 1
    return written, skipped
