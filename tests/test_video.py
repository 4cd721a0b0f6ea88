"""``ganzoo translate`` on videos (ganzoo/video.py): frame count, frame rate and audio kept, one style per clip, same
seed same video, and the usual bad-input behaviour. The clips are made here with PyAV (the ``video`` extra)."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli
from families import tiny_recipe

av = pytest.importorskip("av", reason="needs the video extra (pip install -e .[dev] installs it)")


def model_folder(name: str, folder: Path, domains: list[str], seed: int = 0) -> Path:
    """A tiny model folder with random weights (what `ganzoo run` writes, minus training)."""
    from ganzoo.plugins import get_registry

    torch.manual_seed(seed)
    model = get_registry().get("models", name)(tiny_recipe(name), domains)
    model.build()
    return model.save_pretrained(folder)


def write_clip(path: Path, *, seconds: float = 2.0, fps: int = 25, width: int = 32, height: int = 32, audio: bool = True,
               still: bool = False) -> Path:
    """A synthetic H.264 clip: a bar moving over a colour ramp (or one still picture), with a 440 Hz AAC tone."""
    frames = int(seconds * fps)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = container.add_stream("aac", rate=16000) if audio else None
        if sound is not None:
            sound.layout = "mono"
        for i in range(frames):
            k = 0 if still else i
            pixels = np.zeros((height, width, 3), np.uint8)
            pixels[..., 0] = (k * 4) % 256
            pixels[..., 2] = np.linspace(0, 255, width, dtype=np.uint8)[None]
            pixels[height // 4:height // 2, k % width:k % width + 6, 1] = 255
            for packet in video.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            samples = int(16000 * seconds)
            wave = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 16000)).astype(np.float32)[None]
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, start:start + 1024]), format="fltp", layout="mono")
                chunk.sample_rate = 16000
                for packet in sound.encode(chunk):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return path


def read_clip(path: Path) -> tuple[np.ndarray, Fraction, list[str]]:
    """Decoded frames (N,H,W,3), average frame rate and stream types of a video file."""
    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
        kinds = [stream.type for stream in container.streams]
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    return frames, Fraction(rate), kinds


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("video-models")
    return {"stargan_v2": model_folder("stargan_v2", root / "v2", ["red", "green", "blue"]),
            "cyclegan": model_folder("cyclegan", root / "cg", ["day", "night"])}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clips") / "clip.mp4")


def invoke(*args: str):
    from typer.testing import CliRunner

    from ganzoo.cli import app

    return CliRunner().invoke(app, list(args))


def test_a_two_second_clip_keeps_frame_count_rate_and_audio_and_the_seed_fixes_the_output(models, clip, tmp_path):
    """The done-when check: a 2 s, 25 frames/s clip comes out as an MP4 of 50 frames at 25 frames/s with its audio,
    through the real CLI process. The same seed gives bit-identical decoded frames (also in other batch sizes: one
    style for the whole clip, not one per batch); another seed gives another video."""
    source, rate, _ = read_clip(clip)
    assert len(source) == 50 and rate == 25
    first = tmp_path / "first.mp4"
    result = run_cli("translate", str(models["stargan_v2"]), "--input", str(clip), "--target", "green", "--out", str(first),
                     "--seed", "5", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "wrote 50 frames (25 frames/s" in " ".join(result.stderr.split())
    frames, out_rate, kinds = read_clip(first)
    assert len(frames) == 50 and out_rate == 25 and kinds == ["video", "audio"]
    assert frames.shape[1:] == (16, 16, 3)  # the tiny model's training size
    assert not list(tmp_path.glob(".*partial*"))

    again = tmp_path / "again.mp4"
    assert invoke("translate", str(models["stargan_v2"]), "-i", str(clip), "-t", "green", "-o", str(again), "--seed", "5",
                  "--batch-size", "7", "--device", "cpu").exit_code == 0
    assert np.array_equal(read_clip(again)[0], frames)
    other = tmp_path / "other.mp4"
    assert invoke("translate", str(models["stargan_v2"]), "-i", str(clip), "-t", "green", "-o", str(other), "--seed", "6",
                  "--device", "cpu").exit_code == 0
    assert not np.array_equal(read_clip(other)[0], frames)


def test_one_style_for_every_frame_of_a_style_model():
    """A still clip's frames, split into batches of any size, all get the same style: equal frames, equal outputs
    (with a style drawn per call they would differ)."""
    from ganzoo.plugins import get_registry
    from ganzoo.tiling import one_draw

    torch.manual_seed(0)
    net = get_registry().get("models", "stargan_v2")(tiny_recipe("stargan_v2"), ["red", "green"])
    net.build()
    frame = torch.rand(1, 3, 16, 16) * 2 - 1
    run = one_draw(net, torch.tensor([1]), generator=torch.Generator().manual_seed(0))
    outputs = torch.cat([run(frame.expand(n, -1, -1, -1)) for n in (1, 3, 2)])
    assert torch.allclose(outputs, outputs[:1].expand_as(outputs), atol=1e-5)  # batch sizes round differently
    drawn = net.translate(frame.expand(2, -1, -1, -1), torch.tensor([1, 1]), generator=torch.Generator().manual_seed(0))
    assert (drawn[0] - drawn[1]).abs().max() > 1e-2  # what one_draw prevents: each frame its own random style


def test_keep_size_video_and_no_audio(models, tmp_path):
    """A fully convolutional model with --keep-size writes frames at the clip's own size (36x28, not 16x16);
    --no-audio leaves the sound out; --out as a folder names the file after the input."""
    clip = write_clip(tmp_path / "wide.mp4", seconds=0.4, width=36, height=28)
    result = invoke("translate", str(models["cyclegan"]), "-i", str(clip), "-t", "night", "-o", str(tmp_path / "out"),
                    "--keep-size", "--no-audio", "--device", "cpu")
    assert result.exit_code == 0, result.output
    frames, rate, kinds = read_clip(tmp_path / "out" / "wide.mp4")
    assert frames.shape == (10, 28, 36, 3) and rate == 25 and kinds == ["video"]


def test_bad_videos_are_one_sentence_and_leave_nothing(models, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 50)
    out = tmp_path / "out" / "x.mp4"
    result = invoke("translate", str(models["cyclegan"]), "-i", str(broken), "-t", "night", "-o", str(out), "--device", "cpu")
    assert result.exit_code == 2 and "cannot be read as a video" in result.output
    assert "Traceback" not in result.output and not out.exists() and not (tmp_path / "out").exists()
    clip = write_clip(tmp_path / "c.mp4", seconds=0.2, audio=False)
    result = invoke("translate", str(models["stargan_v2"]), "-i", str(clip), "-t", "green", "-o", str(out), "--num", "2")
    assert result.exit_code == 2 and "drop --num" in result.output and not out.exists()
    result = invoke("translate", str(models["cyclegan"]), "-i", str(clip), "-t", "night", "-o", str(clip))
    assert result.exit_code == 2 and "is the input video" in result.output


def test_without_pyav_one_sentence_says_how_to_install_it(models, tmp_path, monkeypatch):
    clip = write_clip(tmp_path / "c.mp4", seconds=0.2, audio=False)
    monkeypatch.setitem(sys.modules, "av", None)  # import av now raises ImportError
    result = invoke("translate", str(models["cyclegan"]), "-i", str(clip), "-t", "night", "-o", str(tmp_path / "o.mp4"))
    assert result.exit_code == 2, result.output
    assert "pip install 'ganzoo[video]'" in " ".join(result.output.split()) and not (tmp_path / "o.mp4").exists()
