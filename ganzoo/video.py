"""``ganzoo translate MODEL --input clip.mp4 --target D --out out.mp4``: videos, frame by frame.

Decoding and encoding use PyAV (the optional extra ``ganzoo[video]``): its wheels bundle the FFmpeg libraries
(with libx264), so nothing else is installed, and it hands frames over in memory with the stream's exact frame rate
and lets the audio packets be copied into the output as they are (no re-encoding). (imageio-ffmpeg would pipe raw
frames through an ``ffmpeg`` subprocess and need a second pass to bring the audio back.)

The whole clip is translated with ONE draw (:func:`ganzoo.tiling.one_draw`): the same style code, reference style
or noise seed for every frame, so styles do not flicker from frame to frame; the target of an attribute model
(``--attrs``) is read from the first frame. Frames go through the network in batches of ``--batch-size`` at the
size the :class:`~ganzoo.tiling.SizePlan` says (training size, or the frame's own with ``--keep-size`` / ``--tile``).
The output has the input's frame rate (its average rate, constant in the output) and is written beside its
destination, then renamed into place: a failed run leaves no half-written video.
"""

from __future__ import annotations

import os
import time
from fractions import Fraction
from pathlib import Path

import torch

from ganzoo.errors import DataError, GanzooError

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
#: H.264 where the FFmpeg build has it (PyAV's wheels do), MPEG-4 part 2 otherwise
ENCODERS = ("libx264", "h264", "mpeg4")


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def require_av():
    """PyAV, or one sentence saying how to install it."""
    try:
        import av
    except ImportError:
        raise GanzooError("Translating videos needs PyAV, which is not installed; install it with: pip install 'ganzoo[video]'.") from None
    return av


def output_path(src: Path, out: Path) -> Path:
    """``--out`` itself when it names a video file, else ``out/<input stem>.mp4``."""
    dest = out if is_video(out) else out / f"{src.stem}.mp4"
    if dest.resolve() == src.resolve():
        raise GanzooError(f"--out {dest} is the input video; give another file name.")
    if dest.is_dir():
        raise GanzooError(f"--out {dest} is a folder; give a file name such as {dest / (src.stem + '.mp4')}.")
    return dest


def _open_input(av, src: Path):
    try:
        container = av.open(str(src))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise DataError(f"{src} cannot be read as a video ({exc}); give an MP4, MOV, MKV or WebM file.") from None
    if not container.streams.video:
        container.close()
        raise DataError(f"{src} has no video stream; give a video file (or an image, which translates as a picture).")
    return container


def _frame_rate_column():
    """A rich progress column: frames per second."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class FrameRate(ProgressColumn):
        def render(self, task):
            speed = task.finished_speed or task.speed
            return Text(f"{speed:.1f} frames/s" if speed else "? frames/s")

    return FrameRate()


def translate_video(net, src: Path, out: Path, plan, *, target: str | None, attrs: str | None, reference: Path | None,
                    num: int, seed: int, batch_size: int, audio: bool, console) -> Path:
    """Translate the video ``src`` with ``net`` into a video at ``out`` (see the module docstring); returns its path."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ganzoo.data.images import read_image, resize, to_tensor
    from ganzoo.image_output import to_uint8
    from ganzoo.model import StyleModel
    from ganzoo.tiling import one_draw

    av = require_av()
    if num != 1:
        raise GanzooError("A video is translated with one style for all its frames; drop --num.")
    ref = None
    if reference is not None:
        if not isinstance(net, StyleModel):
            raise GanzooError(f"Model {net.name} has no reference-guided mode; drop --reference.")
        ref = resize(to_tensor(read_image(reference)), net.image_size).unsqueeze(0).to(net.device)
    dest = output_path(src, out)
    started = time.perf_counter()
    container = _open_input(av, src)
    partial = dest.with_name(f".{dest.stem}.partial{dest.suffix}")
    written, size, run, audio_out, note = 0, None, None, None, None
    try:
        video_in = container.streams.video[0]
        video_in.thread_type = "AUTO"
        rate = video_in.average_rate or video_in.guessed_rate or video_in.base_rate
        if not rate:
            raise DataError(f"{src} states no frame rate; re-encode it with one (e.g. ffmpeg -i IN -r 25 OUT.mp4).")
        rate = Fraction(rate)
        audio_in = container.streams.audio[0] if audio and container.streams.audio else None
        dest.parent.mkdir(parents=True, exist_ok=True)
        output = av.open(str(partial), "w")
        try:
            codec = next(name for name in ENCODERS if name in av.codecs_available)
            video_out = output.add_stream(codec, rate=rate)
            video_out.pix_fmt = "yuv420p"
            if codec == "libx264":
                video_out.options = {"crf": "17"}  # near-transparent: the translation, not the codec, should show
            if audio_in is not None:
                try:
                    audio_out = output.add_stream_from_template(audio_in)
                except (av.FFmpegError, ValueError) as exc:
                    note = f"audio not kept: its codec cannot be copied into {dest.suffix} ({exc})"
            batch: list[torch.Tensor] = []
            pending_audio: list = []  # audio packets read before the first translated frame fixes the video size

            def encode(frames: torch.Tensor | None) -> None:
                nonlocal written
                for packet_frame in ([] if frames is None else frames):
                    frame = av.VideoFrame.from_ndarray(packet_frame.numpy(), format="rgb24")
                    frame.pts, frame.time_base = written, 1 / rate
                    for packet in video_out.encode(frame):
                        output.mux(packet)
                    written += 1
                    progress.advance(task)

            def flush() -> None:
                nonlocal run, size
                if not batch:
                    return
                x = torch.stack(batch).to(net.device)
                batch.clear()
                if run is None:  # one draw for the whole clip, the target of attribute models read from frame one
                    if attrs is not None:
                        t = net.attribute_target(x[:1], attrs)
                    else:
                        t = torch.tensor([net.domains.index(target)], device=net.device)
                    run = one_draw(net, t, reference=ref, generator=torch.Generator().manual_seed(seed))
                y = plan.apply(run, x, [frame_size] * x.shape[0])
                frames = to_uint8(torch.stack(list(y)))  # (N,H,W,3) uint8
                if size is None:
                    height, width = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2  # yuv420p needs even sides
                    if (height, width) == (0, 0) or min(height, width) == 0:
                        raise DataError(f"{src}: frames of {frames.shape[2]}x{frames.shape[1]} px are too small to encode.")
                    video_out.width, video_out.height = width, height
                    size = (height, width)
                    for packet in pending_audio:  # the first mux opens the encoders: only now that the size is set
                        output.mux(packet)
                    pending_audio.clear()
                encode(frames[:, :size[0], :size[1]].contiguous())

            with Progress(TextColumn("[bold]translate"), BarColumn(), MofNCompleteColumn(), _frame_rate_column(), TimeElapsedColumn(),
                          TimeRemainingColumn(), console=console, disable=not console.is_terminal) as progress:
                task = progress.add_task("frames", total=video_in.frames or None)
                streams = [video_in] + ([audio_in] if audio_out is not None else [])
                frame_size = None
                for packet in container.demux(*streams):
                    if packet.stream.type == "video":
                        for frame in packet.decode():
                            image = to_tensor(frame.to_image())
                            frame_size = tuple(image.shape[-2:])
                            batch.append(plan.prepare(image))
                            if len(batch) >= batch_size:
                                flush()
                    elif packet.dts is not None:  # the demuxer's final empty packets have none
                        packet.stream = audio_out
                        if size is None:
                            pending_audio.append(packet)
                        else:
                            output.mux(packet)
                flush()
                if not written:
                    raise DataError(f"{src} has no decodable video frames; give a video with at least one frame.")
                for packet in video_out.encode():  # drain the encoder
                    output.mux(packet)
        finally:
            output.close()
        os.replace(partial, dest)
    except av.FFmpegError as exc:
        raise DataError(f"{src}: the video could not be translated ({exc}); check that it plays, or re-encode it.") from None
    finally:
        container.close()
        partial.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    kept = ", audio copied" if audio_out is not None else ""
    console.print(f"wrote {written} frames ({float(rate):g} frames/s, {size[1]}x{size[0]}{kept}) to {dest} in {seconds:.1f} s "
                  f"({written / seconds:.1f} frames/s)", highlight=False)
    if note:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    return dest
