"""Tests for the datasets and image reading (CPU only, real files written with PIL)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.data.base import balanced_index
from ganzoo.data.imagefolder import ImageFolderDataset
from ganzoo.data.images import (
    center_crop,
    hflip,
    list_images,
    random_crop,
    random_resized_crop,
    random_resized_crop_box,
    read_image,
    resize,
    to_tensor,
)
from ganzoo.data.shapes import (
    DEFAULT_DOMAINS,
    FAMILY_HUES,
    NO_COLOUR,
    ShapesDataset,
    colour_family_of,
    foreground_mask,
)
from ganzoo.errors import DataError

# ---------------------------------------------------------------- helpers


def save_rgb(path: Path, size=(24, 16), colour=(200, 30, 40), fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format=fmt)
    return path


def noise_jpeg(path: Path, size: int = 64, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=95)
    return path


def make_folder(root: Path, layout: dict[str, int], split: str = "train") -> Path:
    """``layout`` maps domain name -> number of small JPEGs to write."""
    for domain, count in layout.items():
        for i in range(count):
            save_rgb(root / split / domain / f"{i:03d}.jpg", colour=(30 * i % 256, 100, 200))
    return root


def pixel(img: Image.Image, x: int, y: int) -> tuple[int, ...]:
    return tuple(int(v) for v in np.asarray(img)[y, x])


def close(a, b, tol=6) -> bool:
    return all(abs(int(x) - int(y)) <= tol for x, y in zip(a, b))


# ---------------------------------------------------------------- shapes


def test_shapes_shape_range_and_labels():
    ds = ShapesDataset(image_size=32, num_train=30)
    assert len(ds) == 30 and ds.domains == DEFAULT_DOMAINS
    assert ds.labels[:6] == [0, 1, 2, 0, 1, 2]
    x = ds.load(0)
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0.1
    item = ds[4]
    assert item["label"].item() == 1 and item["image"].shape == (3, 32, 32)
    mask = ds.mask(0)
    assert mask.shape == (32, 32) and mask.dtype == torch.bool
    assert 0.12 <= mask.float().mean() <= 0.5
    assert not mask[0].any() and not mask[-1].any() and not mask[:, 0].any() and not mask[:, -1].any()


def test_shapes_deterministic_and_splits_differ():
    a = ShapesDataset(split="train", seed=3, num_train=20)
    b = ShapesDataset(split="train", seed=3, num_train=20)
    for i in range(20):
        assert torch.equal(a.load(i), b.load(i))
        assert torch.equal(a.mask(i), b.mask(i))
    val = ShapesDataset(split="val", seed=3, num_val=20)
    other_seed = ShapesDataset(split="train", seed=4, num_train=20)
    for i in range(20):
        assert not torch.equal(a.load(i), val.load(i))
        assert not torch.equal(a.load(i), other_seed.load(i))
    assert len({a.load(i).sum().item() for i in range(20)}) == 20  # items differ


def test_shapes_flip_follows_rng():
    ds = ShapesDataset(num_train=4)
    plain = ds.load(1)
    seen = set()
    for seed in range(16):
        out = ds.load(1, random.Random(seed))
        assert torch.equal(out, ds.load(1, random.Random(seed)))  # same seed, same augmentation
        if torch.equal(out, plain):
            seen.add("plain")
        else:
            assert torch.equal(out, hflip(plain))
            seen.add("flipped")
    assert seen == {"plain", "flipped"}
    no_flip = ShapesDataset(num_train=4, flip=False)
    assert all(torch.equal(no_flip.load(1, random.Random(s)), plain) for s in range(8))


def test_shapes_bad_arguments():
    with pytest.raises(DataError, match='Did you mean "green"'):
        ShapesDataset(domains=["red", "gren"])
    with pytest.raises(DataError, match="split"):
        ShapesDataset(split="training")
    with pytest.raises(DataError):
        ShapesDataset(domains=["red", "red"])
    with pytest.raises(IndexError):
        ShapesDataset(num_train=5).load(5)


def test_colour_family_classified_on_default_domains():
    ds = ShapesDataset(num_train=300)
    correct = sum(colour_family_of(ds.load(i), ds.mask(i)) == ds.domains[ds.labels[i]] for i in range(len(ds)))
    assert correct / len(ds) >= 0.99
    # Without the true mask too: the segmented foreground is enough.
    x = ds.load(7)
    assert colour_family_of(x, foreground_mask(x)) == ds.domains[ds.labels[7]]


def test_colour_family_all_families_and_restricted_candidates():
    families = list(FAMILY_HUES)
    ds = ShapesDataset(num_train=16 * len(families), domains=families, image_size=24)
    for i in range(len(ds)):
        assert colour_family_of(ds.load(i), ds.mask(i)) == families[ds.labels[i]], i
    # An orange object judged among red/green/blue is red, its nearest candidate.
    orange = next(i for i in range(len(ds)) if families[ds.labels[i]] == "orange")
    assert colour_family_of(ds.load(orange), ds.mask(orange), families=["red", "green", "blue"]) == "red"
    grey = torch.zeros(3, 8, 8)
    assert colour_family_of(grey) == NO_COLOUR


def test_foreground_mask_recovers_silhouette():
    for size in (32, 64):
        ds = ShapesDataset(num_train=120, image_size=size, domains=list(FAMILY_HUES))
        ious = []
        for i in range(len(ds)):
            pred, true = foreground_mask(ds.load(i)), ds.mask(i)
            ious.append(((pred & true).sum() / (pred | true).sum()).item())
        assert np.mean(ious) >= 0.95, (size, np.mean(ious))
        assert min(ious) >= 0.8
    batch = torch.stack([ds.load(0), ds.load(1)])
    assert foreground_mask(batch).shape == (2, 64, 64)


# Pixel sums of the first classic train items (image, coverage), recorded before the varied options existed:
# with the options off, items must stay as they were (a changed draw order would change every item).
CLASSIC_IMAGE_SUMS = [341021, 440004, 455194, 526065, 407928, 528826, 424670, 316461, 393573, 529228, 451909, 518283]
CLASSIC_COVERAGE_SUMS = [115597, 51581, 40843, 45178, 117683, 48077, 65817, 90555, 48528, 40646, 54102, 54723]


def test_shapes_classic_items_unchanged_with_the_varied_options_off():
    ds = ShapesDataset(split="train", image_size=32, num_train=12)
    for i, (image_sum, coverage_sum) in enumerate(zip(CLASSIC_IMAGE_SUMS, CLASSIC_COVERAGE_SUMS)):
        image, coverage = ds.render(i)
        assert abs(int(image.sum()) - image_sum) <= 64 and abs(int(coverage.astype(int).sum()) - coverage_sum) <= 64, i


def _elongation(mask: torch.Tensor) -> float:
    """Square root of the ratio of the silhouette's second-moment eigenvalues: 1 for a disc, 3 for a 3:1 bar."""
    ys, xs = mask.nonzero(as_tuple=True)
    points = torch.stack([xs, ys]).float()
    low, high = torch.linalg.eigvalsh(torch.cov(points))
    return float((high / low.clamp_min(1e-6)).sqrt())


def test_shapes_varied_outlines_and_uneven_background():
    classic = ShapesDataset(num_train=150, image_size=32)
    varied = ShapesDataset(num_train=150, image_size=32, varied_outlines=True, uneven_background=True)
    assert not any(torch.equal(classic.load(i), varied.load(i)) for i in range(10))
    ious, correct = [], 0
    for i in range(len(varied)):
        x, mask = varied.load(i), varied.mask(i)
        assert x.min() >= -1 and x.max() <= 1
        assert 0.1 <= mask.float().mean() <= 0.5, i
        assert not mask[0].any() and not mask[-1].any() and not mask[:, 0].any() and not mask[:, -1].any()
        pred = foreground_mask(x)
        ious.append(((pred & mask).sum() / (pred | mask).sum()).item())
        correct += colour_family_of(x, mask) == varied.domains[varied.labels[i]]
    # The background's light and shade stay grey: the judges' segmentation and colour still hold.
    assert np.mean(ious) >= 0.95 and correct / len(varied) >= 0.99
    # Stretched outlines: more long, thin silhouettes than the classic kinds give.
    def long_ones(ds):
        return sum(_elongation(ds.mask(i)) >= 2.0 for i in range(len(ds)))
    assert long_ones(varied) >= 20 > long_ones(classic) + 10
    # Uneven background: far from the object, luminance varies more than the classic faint gradient.
    def background_spread(ds):
        return np.mean([ds.load(i)[:, ~ds.mask(i)].std().item() for i in range(len(ds))])
    assert background_spread(varied) > 1.3 * background_spread(classic)


def test_shapes_renders_are_kept_and_handed_out_unchanged(monkeypatch):
    import ganzoo.data.shapes as shapes

    monkeypatch.setattr(shapes, "CACHE_BYTES", 5 * 16 * 16 * 4)  # room for 5 items of 16 px
    ds, fresh = ShapesDataset(num_train=12, image_size=16), ShapesDataset(num_train=12, image_size=16)
    first = [ds.load(i) for i in range(12)]
    assert sorted(ds._rendered) == [0, 1, 2, 3, 4]  # the cache stays within its bytes
    first[0].add_(1.0)  # a caller changing its tensor changes nothing kept
    for i in range(12):
        assert torch.equal(ds.load(i), fresh.load(i)) and torch.equal(ds.mask(i), fresh.mask(i))
    with pytest.raises(ValueError):
        ds.render(0)[0][0, 0, 0] = 1  # renders are read-only


def test_shapes_render_speed():
    ds = ShapesDataset(num_train=200, image_size=32)
    ds.load(0)
    start = time.perf_counter()
    for i in range(200):
        ds.load(i)
    assert time.perf_counter() - start < 2.0
    big = ShapesDataset(num_train=20, image_size=128)
    start = time.perf_counter()
    for i in range(20):
        big.load(i)
    assert time.perf_counter() - start < 1.0


# ---------------------------------------------------------------- reading odd images


def test_read_grayscale_la_and_1bit(tmp_path):
    Image.new("L", (8, 6), 77).save(tmp_path / "g.png")
    img = read_image(tmp_path / "g.png")
    assert img.mode == "RGB" and img.size == (8, 6) and pixel(img, 3, 3) == (77, 77, 77)
    Image.new("LA", (8, 6), (10, 0)).save(tmp_path / "la.png")
    assert pixel(read_image(tmp_path / "la.png"), 0, 0) == (255, 255, 255)  # transparent -> white
    Image.new("1", (8, 6), 1).save(tmp_path / "b.png")
    assert pixel(read_image(tmp_path / "b.png"), 2, 2) == (255, 255, 255)


def test_read_rgba_composites_onto_white(tmp_path):
    rgba = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 5, 10))
    rgba.paste((0, 0, 0, 128), (5, 0, 10, 5))
    rgba.save(tmp_path / "a.png")
    img = read_image(tmp_path / "a.png")
    assert img.mode == "RGB"
    assert pixel(img, 1, 1) == (0, 0, 255)
    assert pixel(img, 8, 8) == (255, 255, 255)
    assert close(pixel(img, 8, 1), (127, 127, 127), tol=2)


def test_read_palette_with_and_without_transparency(tmp_path):
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    pal.putpixel((0, 0), 1)
    pal.save(tmp_path / "p.png")
    pal.save(tmp_path / "pt.png", transparency=0)
    assert pixel(read_image(tmp_path / "p.png"), 4, 4) == (255, 0, 0)
    transparent = read_image(tmp_path / "pt.png")
    assert pixel(transparent, 4, 4) == (255, 255, 255) and pixel(transparent, 0, 0) == (0, 255, 0)


def test_read_16bit_png_is_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 16).reshape(16, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "d.png")
    assert Image.open(tmp_path / "d.png").mode.startswith("I")
    values = np.asarray(read_image(tmp_path / "d.png"))[..., 0].astype(int)
    assert values.min() == 0 and values.max() == 255
    assert np.abs(values - ramp / 257.0).max() <= 1  # each level scaled by 255/65535
    assert (values == 255).mean() < 0.01  # clipping would saturate almost everything


def test_read_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (20, 10), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    img = read_image(tmp_path / "c.jpg")
    assert img.mode == "RGB" and close(pixel(img, 5, 5), (255, 0, 0), tol=8)


def test_read_applies_exif_orientation(tmp_path):
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 10, 20))  # a red band on the left
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    img.save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = read_image(tmp_path / "r.jpg")
    assert out.size == (20, 40)
    assert close(pixel(out, 10, 3), (255, 0, 0), tol=30)  # the left band is now at the top
    assert close(pixel(out, 10, 36), (0, 0, 255), tol=30)


def test_read_animated_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), c) for c in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(tmp_path / "a.gif").n_frames == 3
    assert pixel(read_image(tmp_path / "a.gif"), 8, 8) == (255, 0, 0)


@pytest.mark.parametrize("kind", ["empty", "text", "truncated", "tiny", "huge", "bomb", "missing"])
def test_read_unusable_files_raise_data_error(tmp_path, kind, monkeypatch):
    path = tmp_path / f"{kind}.jpg"
    max_side = 16384
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("<html>this is not a picture</html>")
    elif kind == "truncated":
        data = noise_jpeg(tmp_path / "full.jpg").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "tiny":
        path = save_rgb(tmp_path / "tiny.png", size=(1, 1))
    elif kind == "huge":
        path, max_side = save_rgb(tmp_path / "huge.png", size=(64, 8)), 32
    elif kind == "bomb":
        path = save_rgb(tmp_path / "bomb.png", size=(64, 64))
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DataError) as info:
        read_image(path, max_side=max_side)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_to_tensor_range_and_layout():
    img = Image.new("RGB", (5, 3), (0, 255, 51))
    t = to_tensor(img)
    assert t.shape == (3, 3, 5)
    assert torch.allclose(t[:, 0, 0], torch.tensor([-1.0, 1.0, 51 / 127.5 - 1]))


def test_list_images(tmp_path):
    for name in ["b.JPG", "a.png", "c.webp", "d.txt", ".hidden.jpg", "sub/e.jpeg", ".cache/f.png", "g.Gif"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    names = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert names == ["a.png", "b.JPG", "c.webp", "g.Gif", "sub/e.jpeg"]


# ---------------------------------------------------------------- augmentation maths


def test_augmentations():
    t = torch.linspace(-1, 1, 3 * 40 * 60).reshape(3, 40, 60)
    assert resize(t, 16).shape == (3, 16, 16)
    assert center_crop(t, 20).shape == (3, 20, 20)
    assert torch.equal(center_crop(t, 20), t[:, 10:30, 20:40])
    assert random_crop(t, 30, random.Random(0)).shape == (3, 30, 30)
    assert torch.equal(random_crop(t, 30, random.Random(1)), random_crop(t, 30, random.Random(1)))
    assert torch.equal(hflip(hflip(t)), t) and torch.equal(hflip(t)[..., 0], t[..., -1])
    out = random_resized_crop(t, 24, random.Random(0))
    assert out.shape == (3, 24, 24) and out.min() >= -1 and out.max() <= 1
    for seed in range(50):
        top, left, h, w = random_resized_crop_box(100, 120, random.Random(seed))
        assert 0 <= top and top + h <= 100 and 0 <= left and left + w <= 120
        assert 0.8 * 12000 * 0.97 <= h * w <= 12000 and 0.85 <= w / h <= 1.15
    # A very wide image cannot fit the ratio in 10 attempts: centred fallback.
    assert random_resized_crop_box(10, 1000, random.Random(0)) == (0, 494, 10, 11)


# ---------------------------------------------------------------- image folders


def test_imagefolder_basic_and_augmentation(tmp_path):
    root = make_folder(tmp_path, {"cat": 3, "dog": 2, "wild": 2})
    ds = ImageFolderDataset(str(root), image_size=16)
    assert ds.domains == ["cat", "dog", "wild"] and ds.labels == [0, 0, 0, 1, 1, 2, 2]
    assert ds.num_skipped == 0
    x = ds.load(0)
    assert x.shape == (3, 16, 16) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(ds.load(3, random.Random(5)), ds.load(3, random.Random(5)))
    assert ds.load(3, random.Random(5)).shape == (3, 16, 16)
    subset = ImageFolderDataset(str(root), image_size=16, domains=["wild", "cat"])
    assert subset.domains == ["wild", "cat"] and subset.labels == [0, 0, 1, 1, 1]
    groups = subset.indices_by_label()
    assert balanced_index(groups, random.Random(0), label=0) in groups[0]


def test_imagefolder_augmentation_matches_stargan_v2_recipe(tmp_path):
    root = tmp_path / "ds"
    for domain in ("a", "b"):
        (root / "train" / domain).mkdir(parents=True)
        ramp = np.tile(np.linspace(0, 255, 40, dtype=np.uint8), (30, 1))
        Image.fromarray(np.stack([ramp] * 3, -1)).save(root / "train" / domain / "x.png")
    plain = ImageFolderDataset(str(root), image_size=20, randcrop_prob=0.0, flip=False)
    assert all(torch.equal(plain.load(0, random.Random(s)), plain.load(0)) for s in range(5))
    flips = ImageFolderDataset(str(root), image_size=20, randcrop_prob=0.0)
    outs = [flips.load(0, random.Random(s)) for s in range(20)]
    assert any(torch.equal(o, hflip(flips.load(0))) for o in outs) and any(torch.equal(o, flips.load(0)) for o in outs)
    crops = ImageFolderDataset(str(root), image_size=20, randcrop_prob=1.0, flip=False)
    assert sum(not torch.allclose(crops.load(0, random.Random(s)), plain.load(0)) for s in range(10)) >= 8


def test_imagefolder_missing_split(tmp_path):
    make_folder(tmp_path, {"a": 1, "b": 1}, split="train")
    with pytest.raises(DataError) as info:
        ImageFolderDataset(str(tmp_path), split="val")
    message = str(info.value)
    assert str(tmp_path / "val") in message and "ROOT/train/<domain>/*.jpg" in message
    with pytest.raises(DataError, match="missing"):
        ImageFolderDataset(str(tmp_path / "nowhere"))


def test_imagefolder_empty_domain(tmp_path):
    make_folder(tmp_path, {"a": 2})
    (tmp_path / "train" / "b").mkdir()
    (tmp_path / "train" / "b" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="contains no images") as info:
        ImageFolderDataset(str(tmp_path))
    assert str(tmp_path / "train" / "b") in str(info.value)


def test_imagefolder_single_domain_and_unknown_domain(tmp_path):
    make_folder(tmp_path, {"horse": 2})
    with pytest.raises(DataError, match="at least 2"):
        ImageFolderDataset(str(tmp_path))
    make_folder(tmp_path, {"zebra": 2})
    with pytest.raises(DataError, match='Did you mean "zebra"') as info:
        ImageFolderDataset(str(tmp_path), domains=["horse", "zebar"])
    assert "horse, zebra" in str(info.value)
    with pytest.raises(DataError, match="at least 2"):
        ImageFolderDataset(str(tmp_path), domains=["horse"])


def test_imagefolder_skips_junk_and_falls_back_on_truncated(tmp_path):
    root = tmp_path
    a = root / "train" / "a"
    noise_jpeg(a / "0_good.jpg", seed=1)
    data = noise_jpeg(root / "full.jpg", seed=2).read_bytes()
    (a / "1_truncated.jpg").write_bytes(data[: len(data) // 2])
    noise_jpeg(a / "2_good.jpg", seed=3)
    (a / "3_empty.jpg").write_bytes(b"")
    (a / "4_text.jpg").write_text("not an image")
    save_rgb(a / "5_tiny.png", size=(1, 1))
    make_folder(root, {"b": 2})

    ds = ImageFolderDataset(str(root), image_size=32)
    skipped = {p.name for p, _ in ds.skipped}
    assert skipped == {"3_empty.jpg", "4_text.jpg", "5_tiny.png"}
    assert [p.name for p in ds.paths[:3]] == ["0_good.jpg", "1_truncated.jpg", "2_good.jpg"]
    assert ds.num_skipped == 3

    # The truncated file passes the header check but fails to decode: the next
    # readable image of the same domain is used instead, and it is counted.
    fallback = ds.load(1)
    assert torch.equal(fallback, ds.load(2))
    assert {p.name for p in ds.bad_paths} == {"1_truncated.jpg"}
    assert ds.num_skipped == 4
    assert torch.equal(ds.load(1, random.Random(0)), ds.load(2, random.Random(0)))


def test_imagefolder_fallback_wraps_and_all_bad_raises(tmp_path):
    a = tmp_path / "train" / "a"
    noise_jpeg(a / "0_good.jpg", seed=1)
    data = noise_jpeg(tmp_path / "full.jpg", seed=2).read_bytes()
    (a / "1_truncated.jpg").write_bytes(data[: len(data) // 3])
    make_folder(tmp_path, {"b": 1})
    ds = ImageFolderDataset(str(tmp_path), image_size=16)
    assert torch.equal(ds.load(1), ds.load(0))  # wraps around to the start of the domain

    c = tmp_path / "other" / "train"
    for domain in ("a", "b"):
        (c / domain).mkdir(parents=True)
        (c / domain / "x.jpg").write_bytes(data[: len(data) // 3])
    broken = ImageFolderDataset(str(tmp_path / "other"), image_size=16)
    with pytest.raises(DataError, match="failed to decode"):
        broken.load(0)


def test_imagefolder_domain_of_only_junk(tmp_path):
    make_folder(tmp_path, {"a": 2})
    b = tmp_path / "train" / "b"
    b.mkdir(parents=True)
    (b / "x.jpg").write_bytes(b"")
    (b / "y.png").write_text("nope")
    with pytest.raises(DataError, match="None of the 2 files") as info:
        ImageFolderDataset(str(tmp_path))
    assert str(b) in str(info.value)
