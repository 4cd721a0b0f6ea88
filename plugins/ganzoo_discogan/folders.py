"""``ganzoo discogan-folders``: the official DiscoGAN data sets written as unaligned folders.

The DiscoGAN recipes read the unaligned layout of CycleGAN (``ROOT/trainA``, ``trainB``, ``testA``, ``testB``; the
``unaligned`` dataset). This command builds it from the sources the official ``discogan/dataset.py`` reads, with
the same selection and preprocessing:

- ``edges``: a pix2pix ``edges2shoes`` / ``edges2handbags`` folder (``train/``, ``val/``; each image an edge map and
  a photo side by side). Training halves are disjoint, as officially: the first half of the (sorted) training files
  gives the edge maps (A), the second half the photos (B); the test folders hold both halves of every ``val`` file.
  Edge lines are thickened by one pixel first (a 3x3 minimum filter: the official dilation of the inverted image).
- ``celeba``: CelebA (``list_attr_celeba.txt``, ``img_align_celeba/``). A = images with ``--style-a``; B = images with
  ``--style-b``, or without ``--style-a`` when none is given; ``--constraint ATTR --constraint-type 1|-1`` keeps only
  images with (1) or without (-1) ATTR first. The last ``--n-test`` (200) of each side are the test images.

Images are resized to ``--size`` (64, the official size) as the official loader resizes them (OpenCV's bilinear
``cv2.resize``, without antialiasing) and written as PNG, so the ``unaligned`` loader with ``load_size`` =
``image_size`` = 64 reads the official network inputs. ``--size 0`` keeps the source pixels (the CelebA images are
linked, not copied) and leaves resizing to the loader.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ganzoo.api import DataError, GanzooError, did_you_mean

KINDS = ("edges", "celeba")
SIDES = ("trainA", "trainB", "testA", "testB")


def register_commands(app) -> None:
    @app.command("discogan-folders")
    def discogan_folders(
        kind: str = typer.Argument(..., help="edges (a pix2pix edges2shoes/edges2handbags folder) or celeba"),
        source: Path = typer.Argument(..., help="the downloaded data set: edges2shoes/ (train/, val/) or CelebA "
                                                "(list_attr_celeba.txt, img_align_celeba/)"),
        out_dir: Path = typer.Argument(..., help="folder to write OUT/{trainA,trainB,testA,testB}/ into"),
        style_a: str = typer.Option(None, "--style-a", help="celeba: the attribute of domain A, e.g. Male, Blond_Hair"),
        style_b: str = typer.Option(None, "--style-b", help="celeba: the attribute of domain B (default: not --style-a)"),
        constraint: str = typer.Option(None, "--constraint", help="celeba: use only images with / without this attribute"),
        constraint_type: int = typer.Option(None, "--constraint-type", help="celeba: 1 (with --constraint) or -1 (without)"),
        n_test: int = typer.Option(200, "--n-test", min=1, help="celeba: test images per side (the last ones)"),
        size: int = typer.Option(64, "--size", min=0, help="side of the written images; 0 keeps the sources' pixels"),
        workers: int = typer.Option(os.cpu_count() or 1, "--workers", min=1, help="processes that convert images"),
    ):
        """Write DiscoGAN's edges2shoes/edges2handbags or CelebA-attribute data as unaligned folders (trainA, trainB, testA, testB)."""
        if kind not in KINDS:
            raise GanzooError(f'Unknown kind "{kind}".{did_you_mean(kind, KINDS)} Kinds: {", ".join(KINDS)}.')
        if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
            raise GanzooError(f"{out_dir} is not empty; choose a new folder so no images get mixed.")
        if kind == "edges":
            jobs = edges_jobs(source, out_dir, size)
        else:
            jobs = celeba_jobs(source, out_dir, style_a, style_b, constraint, constraint_type, n_test, size)
        write(jobs, out_dir, workers)
        counts = {side: sum(1 for job in jobs if job[1].parent.name == side) for side in SIDES}
        print(f"wrote {', '.join(f'{n} {side}' for side, n in counts.items())} images to {out_dir}")


# --------------------------------------------------------------------------- what to write

#: a job: (source file, destination file, which part of the source, output size)
Job = tuple[Path, Path, str, int]


def _files(folder: Path) -> list[Path]:
    from ganzoo.api import list_images

    if not folder.is_dir():
        raise DataError(f'Folder "{folder}" is missing; point the command at the unpacked data set.')
    files = list_images(folder)
    if not files:
        raise DataError(f'Folder "{folder}" holds no images (jpg, png, ...).')
    return files


def edges_jobs(source: Path, out: Path, size: int) -> list[Job]:
    """The official edges2* split: disjoint halves of train/ for A (edges) and B (photos), all of val/ for both tests."""
    train, val = _files(source / "train"), _files(source / "val")
    half = len(train) // 2
    jobs: list[Job] = []
    for side, files, part in (("trainA", train[:half], "edges"), ("trainB", train[half:], "photo"),
                              ("testA", val, "edges"), ("testB", val, "photo")):
        jobs += [(f, out / side / f"{f.stem}.png", part, size) for f in files]
    return jobs


def read_attributes(path: Path) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """``list_attr_celeba.txt``: (attribute names, [(file name, ["1" / "-1" per attribute])])."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        raise DataError(f'"{path}" is missing or unreadable; it is CelebA\'s attribute file (list_attr_celeba.txt).') from None
    names = lines[1].split() if len(lines) > 1 else []
    rows = [(parts[0], parts[1:]) for parts in (line.split() for line in lines[2:]) if len(parts) == len(names) + 1]
    if not names or not rows:
        raise DataError(f'"{path}" does not read as CelebA\'s attribute file (a count, the attribute names, then one row per image).')
    return names, rows


def celeba_jobs(source: Path, out: Path, style_a: str | None, style_b: str | None, constraint: str | None,
                constraint_type: int | None, n_test: int, size: int) -> list[Job]:
    """The official ``get_celebA_files`` selection, in the attribute file's order."""
    names, rows = read_attributes(source / "list_attr_celeba.txt")
    images = source / "img_align_celeba"
    if not images.is_dir():
        raise DataError(f'Folder "{images}" is missing; it holds CelebA\'s aligned images (img_align_celeba.zip).')

    def column(attribute: str | None, option: str) -> int:
        if attribute not in names:
            raise GanzooError(f'{option}: "{attribute}" is not a CelebA attribute.{did_you_mean(str(attribute), names)} '
                              f"Attributes: {', '.join(names)}.")
        return names.index(attribute)

    if style_a is None:
        raise GanzooError("celeba needs --style-a ATTRIBUTE (e.g. Male, or Blond_Hair with --style-b Black_Hair).")
    a = column(style_a, "--style-a")
    if constraint is not None:
        if constraint_type not in (1, -1):
            # (The official README's hair-colour command gives --constraint without a type, which selects nothing.)
            raise GanzooError("--constraint needs --constraint-type 1 (images with it) or -1 (images without it).")
        c = column(constraint, "--constraint")
        rows = [r for r in rows if r[1][c] == str(constraint_type)]
    side_a = [f for f, values in rows if values[a] == "1"]
    if style_b is not None:
        b = column(style_b, "--style-b")
        side_b = [f for f, values in rows if values[b] == "1"]
    else:
        side_b = [f for f, values in rows if values[a] == "-1"]
    for side, files in (("A", side_a), ("B", side_b)):
        if len(files) <= n_test:
            raise GanzooError(f"Only {len(files)} images for side {side}; fewer than --n-test {n_test} plus one to train on.")
    jobs: list[Job] = []
    for side, files in (("trainA", side_a[:-n_test]), ("trainB", side_b[:-n_test]),
                        ("testA", side_a[-n_test:]), ("testB", side_b[-n_test:])):
        suffix = ".png" if size else Path(files[0]).suffix
        jobs += [(images / f, out / side / f"{Path(f).stem}{suffix}", "whole", size) for f in files]
    return jobs


# --------------------------------------------------------------------------- writing


def write(jobs: list[Job], out: Path, workers: int) -> None:
    from concurrent.futures import ProcessPoolExecutor

    from rich.progress import track

    missing = next((job[0] for job in jobs if not job[0].is_file()), None)
    if missing is not None:
        raise DataError(f'"{missing}" is missing; the data set is incomplete (unpack all of it).')
    for side in SIDES:
        (out / side).mkdir(parents=True, exist_ok=True)
    if workers == 1:
        for job in track(jobs, description="writing"):
            convert(job)
        return
    with ProcessPoolExecutor(workers) as pool:
        for _ in track(pool.map(convert, jobs, chunksize=64), total=len(jobs), description="writing"):
            pass


def convert(job: Job) -> None:
    """Write one image: the chosen part of the source, edges thickened, resized as ``cv2.resize`` does."""
    import numpy as np
    from PIL import Image

    source, target, part, size = job
    if part == "whole" and not size:
        target.symlink_to(source.resolve())
        return
    with Image.open(source) as img:
        pixels = np.asarray(img.convert("RGB"))
    if part != "whole":
        # An edges2* image is the edge map (left) and the photo (right), each square.
        width = pixels.shape[1] // 2
        pixels = pixels[:, :width] if part == "edges" else pixels[:, width:]
    if part == "edges":
        pixels = thicken_lines(pixels)
    if size:
        pixels = resize_like_opencv(pixels, size)
    Image.fromarray(pixels).save(target)


def thicken_lines(pixels):
    """A 3x3 minimum filter: dark lines grow by one pixel, as the official ``255 - dilate(255 - image)``."""
    import numpy as np

    padded = np.pad(pixels, ((1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = pixels.shape[:2]
    return np.min([padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], axis=0)


def resize_like_opencv(pixels, size: int):
    """``cv2.resize(image, (size, size))``: bilinear at half-pixel centres, no antialiasing (uint8 out)."""
    import numpy as np

    def axis(n_in: int):
        src = np.clip((np.arange(size) + 0.5) * (n_in / size) - 0.5, 0, None)
        low = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        return low, np.minimum(low + 1, n_in - 1), (src - low)

    top, bottom, wy = axis(pixels.shape[0])
    left, right, wx = axis(pixels.shape[1])
    image = pixels.astype(np.float64)
    rows = image[top] * (1 - wy)[:, None, None] + image[bottom] * wy[:, None, None]
    out = rows[:, left] * (1 - wx)[None, :, None] + rows[:, right] * wx[None, :, None]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
