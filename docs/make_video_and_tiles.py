"""Draw docs/video_and_tiles.png: a synthetic clip and its translation, and a large image translated whole and in tiles.

    python docs/make_video_and_tiles.py MODEL_DIR [--target DOMAIN] [--out docs/video_and_tiles.png]

MODEL_DIR is a fully convolutional model trained on the built-in shapes set (the README's picture used
``recipes/cyclegan_shapes.yaml``, red -> blue). Everything goes through the real CLI (``ganzoo translate``):

- a 2 s, 25 frames/s clip that pans over a canvas of shapes (64 px frames), translated with ``--keep-size``;
  rows 1 and 2 show every 5th frame of the input and of the output video;
- a 512 px canvas translated whole (``--keep-size``) and in 192 px tiles (``--tile 192 --tile-overlap 48``);
  row 3 shows input, whole, tiled and 4 x |whole - tiled|, each scaled to 160 px. The mean absolute difference
  is printed (0-255 scale).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def canvas(size: int, family: str, seed: int, item: int = 32) -> np.ndarray:
    """A size x size picture made of item x item shapes of one colour family (what the model was trained on)."""
    from ganzoo.data.shapes import render_item

    rng = random.Random(seed)
    cells = size // item
    rows = [np.concatenate([render_item(rng, item, family)[0] for _ in range(cells)], axis=1) for _ in range(cells)]
    return np.concatenate(rows, axis=0)


def write_clip(path: Path, picture: np.ndarray, frames: int = 50, fps: int = 25, side: int = 64) -> None:
    import av

    span = picture.shape[0] - side
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12"}
        for i in range(frames):
            offset = round(span * i / (frames - 1))
            crop = np.ascontiguousarray(picture[offset:offset + side, offset // 2:offset // 2 + side])
            for packet in stream.encode(av.VideoFrame.from_ndarray(crop, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def read_frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def ganzoo(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "ganzoo", *args], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--target", default=None, help="target domain (default: the model's second domain)")
    parser.add_argument("--source", default="red", help="colour family of the inputs")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("video_and_tiles.png"))
    args = parser.parse_args()
    import ganzoo as gz

    target = args.target or gz.load(args.model).domains[1]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_clip(tmp / "clip.mp4", canvas(160, args.source, seed=1))
        ganzoo("translate", args.model, "-i", str(tmp / "clip.mp4"), "-t", target, "-o", str(tmp / "out.mp4"), "--keep-size")
        inputs, outputs = read_frames(tmp / "clip.mp4"), read_frames(tmp / "out.mp4")
        assert len(inputs) == len(outputs) == 50, (len(inputs), len(outputs))
        Image.fromarray(canvas(512, args.source, seed=2)).save(tmp / "big.png")
        ganzoo("translate", args.model, "-i", str(tmp / "big.png"), "-t", target, "-o", str(tmp / "whole"), "--keep-size")
        ganzoo("translate", args.model, "-i", str(tmp / "big.png"), "-t", target, "-o", str(tmp / "tiled"),
               "--tile", "192", "--tile-overlap", "48")
        big = np.asarray(Image.open(tmp / "big.png"))
        whole = np.asarray(Image.open(tmp / "whole" / "big.png")).astype(np.int16)
        tiled = np.asarray(Image.open(tmp / "tiled" / "big.png")).astype(np.int16)
    difference = np.abs(whole - tiled)
    print(f"whole vs tiled: mean |difference| {difference.mean():.2f}, max {difference.max()} (0-255)")

    frame_row = lambda frames: np.concatenate(frames[::5], axis=1)  # noqa: E731 - 10 frames of 64 px
    rows = [frame_row(inputs), frame_row(outputs)]
    panels = [big, whole.astype(np.uint8), tiled.astype(np.uint8), np.clip(difference * 4, 0, 255).astype(np.uint8)]
    rows.append(np.concatenate([np.asarray(Image.fromarray(p).resize((160, 160), Image.LANCZOS)) for p in panels], axis=1))
    label_height = 14
    sheet = Image.new("RGB", (640, sum(r.shape[0] for r in rows) + label_height * 3), "white")
    draw = ImageDraw.Draw(sheet)
    labels = ["input clip, every 5th frame (2 s, 25 frames/s)", f"translated to {target} (--keep-size), same frames",
              "512 px input | whole (--keep-size) | 192 px tiles (--tile 192) | 4 x |whole - tiled|"]
    y = 0
    for label, row in zip(labels, rows):
        draw.text((2, y + 1), label, fill="black")
        y += label_height
        sheet.paste(Image.fromarray(row), (0, y))
        y += row.shape[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
