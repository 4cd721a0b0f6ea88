"""Metrics: their maths against independent computations, the feature nets against pytorch-fid,
LPIPS with its shipped heads, the classifier, content preservation, and ``ganzoo eval``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from ganzoo.metrics.distances import frechet_distance, kernel_distance

# --------------------------------------------------------------------------- maths


def scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance as pytorch-fid computes it (scipy's sqrtm), written out independently."""
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1.dot(s2))
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


def test_frechet_distance_equals_the_closed_form_for_two_gaussians():
    """Sets whose sample mean and covariance are exactly (m, diag(s^2)): Hadamard columns are orthogonal and centred."""
    from scipy.linalg import hadamard

    n, d = 64, 6
    h = hadamard(n)[:, 1:d + 1].astype(np.float64) * np.sqrt((n - 1) / n)  # unit sample variance, zero covariance
    m1, m2 = np.arange(d, dtype=np.float64), np.linspace(1, -1, d)
    s1, s2 = np.linspace(0.5, 2.0, d), np.linspace(3.0, 0.2, d)
    a, b = m1 + h * s1, m2 + h[::-1] * s2
    closed = ((m1 - m2) ** 2).sum() + (s1**2 + s2**2 - 2 * s1 * s2).sum()
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(closed, rel=1e-9)


def test_frechet_distance_zero_on_identical_sets_symmetric_and_equal_to_scipy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8))
    b = rng.normal(1.0, 2.0, size=(200, 8))
    fa, fb = torch.from_numpy(a), torch.from_numpy(b)
    assert abs(frechet_distance(fa, fa)) < 1e-8
    assert frechet_distance(fa, fb) == pytest.approx(frechet_distance(fb, fa), rel=1e-9)
    assert frechet_distance(fa, fb) == pytest.approx(scipy_fid(a, b), rel=1e-6)
    assert frechet_distance(fa, fb) > 1.0


@pytest.mark.parametrize("n_real, n_fake, dim", [(10, 7, 64), (5, 60, 32), (40, 40, 512)])
def test_frechet_distance_of_fewer_images_than_dimensions_equals_scipy_and_the_eigenvalue_route(n_real, n_fake, dim,
                                                                                             monkeypatch):
    """Fewer images than feature dimensions take the cross-product route (no D x D eigendecomposition): the same
    number as pytorch-fid's sqrtm and as torchmetrics' eigenvalues of S_r S_f."""
    from ganzoo.metrics import distances

    rng = np.random.default_rng(0)
    a = rng.normal(size=(n_real, dim)) @ rng.normal(size=(dim, dim)) / dim**0.5
    b = rng.normal(1.0, 2.0, size=(n_fake, dim))
    fa, fb = torch.from_numpy(a), torch.from_numpy(b)
    calls = []
    few = distances._frechet_distance_of_few
    monkeypatch.setattr(distances, "_frechet_distance_of_few", lambda *args: calls.append(1) or few(*args))
    ours = frechet_distance(fa, fb)
    monkeypatch.undo()
    assert calls == [1]  # the cross-product route was taken
    assert abs(frechet_distance(fa, fa)) < 1e-8
    if dim <= 64:  # scipy's sqrtm of larger products takes seconds
        assert ours == pytest.approx(scipy_fid(a, b), rel=1e-7)
    else:
        from torchmetrics.image.fid import FrechetInceptionDistance

        metric = FrechetInceptionDistance(feature=distances._Precomputed(dim))
        metric.update(fa, real=True)
        metric.update(fb, real=False)
        assert ours == pytest.approx(float(metric.compute()), rel=1e-6)


def numpy_kid(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3 (Binkowski et al.), written out independently."""
    d, m = x.shape[1], x.shape[0]
    k = lambda p, q: (p @ q.T / d + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.sum() / m**2)


def test_kernel_distance_equals_an_independent_mmd():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 5)), rng.normal(0.5, 1.0, size=(40, 5))
    # one subset of all 40 images: the permutation changes nothing, so the value is the full-set MMD
    mean, std = kernel_distance(torch.from_numpy(x), torch.from_numpy(y), subsets=1, subset_size=40)
    assert mean == pytest.approx(numpy_kid(x, y), rel=1e-9)
    same, _ = kernel_distance(torch.from_numpy(x), torch.from_numpy(rng.normal(size=(40, 5))), subsets=20, subset_size=30)
    assert abs(same) < mean / 5  # same distribution: near 0, well below the shifted set's


# --------------------------------------------------------------------------- feature nets vs pytorch-fid


def write_folder(folder: Path, images: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    return folder


def shapes_images(split: str, domain: str, n: int, size: int = 48) -> np.ndarray:
    from ganzoo.data.shapes import ShapesDataset

    data = ShapesDataset(split, size, [domain], num_train=n, num_val=n)
    return np.stack([data.render(i)[0] for i in range(n)])


def pytorch_fid_cli(real: Path, fake: Path, torch_home: Path) -> float:
    """FID by pytorch-fid's own command line, reading its weights from torch.hub's cache in ``torch_home``."""
    env = {**os.environ, "TORCH_HOME": str(torch_home), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "pytorch_fid", str(real), str(fake), "--device", "cpu",
                             "--batch-size", "16", "--num-workers", "0"], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    return float(re.search(r"FID:\s+([-\d.e]+)", result.stdout).group(1))


def real_fid_weights() -> Path | None:
    from ganzoo.metrics.weights import FID_INCEPTION, WeightsUnavailable, resolve_weights

    try:
        found = resolve_weights(FID_INCEPTION)
    except WeightsUnavailable:
        return None
    return None if found.is_random else found.path


@pytest.fixture(scope="module")
def fid_folders(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fid")
    real = write_folder(tmp / "real", shapes_images("train", "red", 20))
    fake = write_folder(tmp / "fake", np.concatenate([shapes_images("val", "red", 10), shapes_images("val", "blue", 10)]))
    return real, fake


@pytest.mark.parametrize("weights", ["random", "real"])
def test_fid_equals_pytorch_fid_with_the_same_weights_and_images(weights, fid_folders, tmp_path):
    """pytorch-fid (its CLI, its network, its scipy maths) and ganzoo agree to 1e-3 relative.

    "random": a seeded random state dict of the exact FID Inception layout, planted where pytorch-fid
    looks for its download; runs everywhere. "real": the real FID weights when this machine has them.
    """
    from ganzoo.metrics.evaluate import fid_between_folders
    from ganzoo.metrics.features import _fid_inception_layout, _random_weights
    from ganzoo.metrics.weights import FID_INCEPTION

    if weights == "real":
        path = real_fid_weights()
        if path is None:
            pytest.skip("no real FID weights here ($GANZOO_FID_WEIGHTS or torch.hub's cache)")
        path_for_them = path
        if path.suffix == ".safetensors":  # pytorch-fid reads torch.hub's cache with torch.load
            from ganzoo.metrics.weights import read_state_dict

            path_for_them = tmp_path / "fid_weights.pth"
            torch.save(read_state_dict(path), path_for_them)
    else:
        path = tmp_path / "random_fid_inception.pth"
        torch.save(_random_weights(_fid_inception_layout().state_dict()), path)
        path_for_them = path
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    os.symlink(Path(path_for_them).resolve(), cache / FID_INCEPTION.cache_name)
    real, fake = fid_folders
    theirs = pytorch_fid_cli(real, fake, tmp_path / "torch_home")
    ours = fid_between_folders(real, fake, weights=str(path))
    assert theirs > 0
    assert ours == pytest.approx(theirs, rel=1e-3)


def test_torchvision_inception_gives_pool_features_and_refuses_other_weights(tmp_path):
    from ganzoo.errors import GanzooError
    from ganzoo.metrics.features import FeatureNet

    net = FeatureNet("torchvision_inception", "random")
    feats = net(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert feats.shape == (2, 2048) and torch.isfinite(feats).all()
    assert "RANDOM INIT" in net.protocol()["weights"]
    wrong = tmp_path / "alexnet.safetensors"
    from safetensors.torch import save_file
    from torchvision.models import alexnet

    save_file(alexnet(weights=None).state_dict(), str(wrong))
    with pytest.raises(GanzooError, match="alexnet.safetensors is not torchvision's Inception-v3"):
        FeatureNet("torchvision_inception", str(wrong))
    with pytest.raises(GanzooError, match="not pytorch-fid's FID Inception"):
        FeatureNet("fid_inception", str(wrong))


def test_missing_weights_are_never_replaced_one_sentence_names_the_ways(tmp_path, monkeypatch):
    from ganzoo.metrics.features import FeatureNet
    from ganzoo.metrics.weights import WeightsUnavailable

    monkeypatch.delenv("GANZOO_FID_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(WeightsUnavailable) as info:
        FeatureNet("fid_inception")
    message = str(info.value)
    assert "--fid-weights" in message and "$GANZOO_FID_WEIGHTS" in message and str(tmp_path / "empty") in message
    assert message.count(". ") == 0  # one sentence
    monkeypatch.setenv("GANZOO_FID_WEIGHTS", str(tmp_path / "nope.pth"))
    with pytest.raises(Exception, match=r"\$GANZOO_FID_WEIGHTS names .*nope.pth, which is not a file"):
        FeatureNet("fid_inception")


def test_weights_can_come_from_the_hugging_face_cache(tmp_path):
    """hf://ORG/REPO/FILE reads the Hugging Face cache (offline here); a file not there is one sentence."""
    from safetensors.torch import save_file

    snapshot = tmp_path / "hf" / "hub" / "models--ganzoo-test--fid" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    save_file({"w": torch.ones(2)}, str(snapshot / "fid.safetensors"))
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("a" * 40)
    code = ("from ganzoo.metrics.weights import FID_INCEPTION, resolve_weights\n"
            "import sys\n"
            "try:\n"
            "    w = resolve_weights(FID_INCEPTION, sys.argv[1]); print(w.path, w.source, w.sha256)\n"
            "except Exception as exc:\n"
            "    print(type(exc).__name__, exc)\n")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}

    def resolve(value):
        return subprocess.run([sys.executable, "-c", code, value], capture_output=True, text=True, env=env).stdout

    found = resolve("hf://ganzoo-test/fid/fid.safetensors")
    assert str(snapshot / "fid.safetensors") in found and "Hugging Face Hub cache" in found
    assert "HubError" in resolve("hf://ganzoo-test/fid/other.safetensors")
    assert "HF_HUB_OFFLINE=1" in resolve("hf://ganzoo-test/nothing/fid.safetensors")
    assert "is not a Hub file" in resolve("hf://ganzoo-test/fid")


# --------------------------------------------------------------------------- LPIPS, content


def test_lpips_uses_the_shipped_heads_and_a_trunk_from_a_file(tmp_path):
    import lpips as lpips_pkg
    from torchvision.models import alexnet

    from ganzoo.metrics.lpips import LPIPS

    metric = LPIPS("random")
    shipped = torch.load(Path(lpips_pkg.__file__).parent / "weights" / "v0.1" / "alex.pth", map_location="cpu", weights_only=True)
    for key, value in shipped.items():
        assert torch.equal(metric.net.state_dict()[key], value), key
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    y = torch.rand(3, 3, 32, 32) * 2 - 1
    assert torch.allclose(metric(x, x), torch.zeros(3), atol=1e-6)
    assert torch.allclose(metric(x, y), metric(y, x), atol=1e-6)
    assert (metric(x, y) > 0).all()
    assert metric.diversity([x, x, x]).abs().max() < 1e-6  # identical outputs: no diversity

    trunk = alexnet(weights=None)
    path = tmp_path / "alexnet-owt.pth"
    torch.save(trunk.state_dict(), path)
    loaded = LPIPS(str(path))
    trunk_state = loaded.net.net.state_dict()
    assert torch.equal(trunk_state["slice2.3.weight"], trunk.features[3].weight)
    assert torch.equal(trunk_state["slice5.10.bias"], trunk.features[10].bias)
    assert "sha256:" in loaded.protocol()["backbone"]


def test_content_preservation_separates_same_layout_from_unrelated_images():
    from ganzoo.data.shapes import ShapesDataset
    from ganzoo.metrics.content import content_preservation

    data = ShapesDataset("val", 32, ["red", "green", "blue"], num_val=12)
    x = torch.stack([data.load(i) for i in range(12)])
    same = content_preservation(x, x)
    recoloured = content_preservation(x, x[:, [2, 0, 1]])  # same objects, other colours
    unrelated = content_preservation(x, x.roll(1, 0))
    assert torch.allclose(same, torch.ones(12), atol=1e-5)
    assert recoloured.mean() > 0.7
    assert unrelated.mean() < 0.35 < recoloured.min()


# --------------------------------------------------------------------------- classifier, eval


@pytest.fixture(scope="module")
def shapes_folder(tmp_path_factory):
    from ganzoo.data.shapes import export_folder

    root = tmp_path_factory.mktemp("shapes") / "data"
    export_folder(root, image_size=16, num_train=24, num_val=4)
    return root


@pytest.fixture(scope="module")
def classifier(shapes_folder):
    from ganzoo.metrics.classifier import train_classifier

    return train_classifier(shapes_folder, backbone="resnet10t", image_size=16, steps=30, batch_size=16)


def test_classifier_is_saved_next_to_the_data_and_reloads_to_the_same_predictions(classifier, shapes_folder):
    from ganzoo.data.imagefolder import ImageFolderDataset
    from ganzoo.metrics.classifier import accuracy, load_classifier

    assert classifier.folder == shapes_folder / ".ganzoo" / "classifiers" / "resnet10t-16px"
    config = json.loads((classifier.folder / "config.json").read_text())
    assert config["domains"] == ["blue", "green", "red"] and config["val_images"] == 12
    assert config["val_accuracy"] >= 0.9  # colour families are easy: a classifier that cannot tell them is broken
    again = load_classifier(classifier.folder)
    val = ImageFolderDataset(str(shapes_folder), "val", image_size=16)
    x = torch.stack([val.load(i) for i in range(len(val))])
    assert torch.equal(again.predict(x), classifier.predict(x))
    assert accuracy(again, val) == pytest.approx(config["val_accuracy"])


class _Stub:
    """A one-hot model whose "translation" is fixed: identity, or a real image of the target domain."""

    label_kind, network_roles, ema_nets = "one-hot", {"generator": ""}, {}
    eval_modes = {"fixed": False}
    device = torch.device("cpu")

    def __init__(self, domains, image_size, behaviour, folder=None):
        self.name, self.domains, self.image_size, self.behaviour = f"stub-{behaviour}", domains, image_size, behaviour
        self.nets = {"generator": torch.nn.Conv2d(3, 3, 1)}
        if folder is not None:
            from ganzoo.data.imagefolder import ImageFolderDataset

            self.real = ImageFolderDataset(str(folder), "train", image_size=image_size, domains=domains)
            self.groups = self.real.indices_by_label()

    def sheet_targets(self):
        return [(d, i) for i, d in enumerate(self.domains)]

    def inference_nets(self):
        return self.nets

    def to(self, device):
        return self

    def generate(self, images, index, mode, *, references=None, generator=None):
        if self.behaviour == "identity":
            return images
        return torch.stack([self.real.load(self.groups[index][i % len(self.groups[index])]) for i in range(len(images))])


def test_domain_accuracy_and_content_read_the_target_not_the_source(shapes_folder, classifier):
    from ganzoo.errors import GanzooError
    from ganzoo.metrics.evaluate import EvalOptions, Translator, evaluate

    domains = ["blue", "green", "red"]
    options = EvalOptions(classifier=str(classifier.folder))
    identity = evaluate(Translator([_Stub(domains, 16, "identity")]), shapes_folder, ["domain_accuracy", "content"], options)
    oracle = evaluate(Translator([_Stub(domains, 16, "oracle", shapes_folder)]), shapes_folder,
                      ["domain_accuracy", "content"], options)
    assert identity.tasks == ["blue2green", "blue2red", "green2blue", "green2red", "red2blue", "red2green"]
    ident, orac = identity.headline(), oracle.headline()
    # identity keeps every source (content 1) and so lands in no target domain; the oracle the reverse
    assert ident["domain_accuracy/fixed"] <= 1 - classifier.val_accuracy + 1e-9
    assert ident["content/fixed"] == pytest.approx(1.0, abs=1e-5)
    assert orac["domain_accuracy/fixed"] >= 0.9
    assert orac["content/fixed"] < 0.5
    assert oracle.metrics["domain_accuracy"]["protocol"]["classifier_val_accuracy"] == round(classifier.val_accuracy, 4)
    with pytest.raises(GanzooError, match="pairwise models of one family"):
        Translator([_Stub(domains, 16, "identity"), _Stub(domains, 16, "oracle", shapes_folder)])


TINY_V2 = {
    "model": "stargan_v2",
    "networks": {"generator": {"dim_in": 8, "max_conv_dim": 16, "style_dim": 8, "w_hpf": 0},
                 "mapping_network": {"latent_dim": 4, "hidden_dim": 16},
                 "style_encoder": {"dim_in": 8, "max_conv_dim": 16}, "discriminator": {"dim_in": 8, "max_conv_dim": 16}},
    "data": {"name": "imagefolder", "image_size": 16, "batch_size": 2},
    "train": {"steps": 2, "checkpoint_every": 2, "sample_every": 0, "log_every": 1, "seed": 1, "ema": 0.9},
}


def test_eval_cli_stamps_every_number_and_says_why_a_metric_is_missing(shapes_folder, classifier, tmp_path, cli):
    recipe = tmp_path / "v2.yaml"
    doc = {**TINY_V2, "data": {**TINY_V2["data"], "root": str(shapes_folder)}}
    recipe.write_text(yaml.safe_dump(doc))
    assert cli("run", str(recipe), "--out", str(tmp_path / "run"), "-q").returncode == 0
    env = {"TORCH_HOME": str(tmp_path / "no-cache"), "GANZOO_FID_WEIGHTS": "", "GANZOO_LPIPS_BACKBONE": ""}
    result = cli("eval", str(tmp_path / "run"), "--data", str(shapes_folder), "--outputs-per-input", "2",
                 "--num-val", "1", "--num-real", "6", "--json", str(tmp_path / "eval.json"), "--fid-weights", "random",
                 env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["modes"] == {"latent": 2, "reference": 2}
    assert len(report["tasks"]) == 6
    fid = report["metrics"]["fid"]
    assert set(fid["values"]) >= {"fid/latent", "fid/reference", "fid/latent/blue2green"}
    assert "RANDOM INIT" in fid["protocol"]["weights"] and "pytorch-fid" in fid["protocol"]["preprocess"]
    assert fid["protocol"]["n_fake_per_task"]["latent/blue2green"] == 1 * 2
    assert "blue 6" in fid["protocol"]["real"]
    assert "alexnet-owt-7be5be79.pth" in report["metrics"]["lpips"]["n/a"]  # no AlexNet weights: n/a, with the way out
    assert report["metrics"]["domain_accuracy"]["values"]["domain_accuracy/latent"] >= 0
    assert report["metrics"]["params"]["values"]["params/generators"] == 1
    assert "FID" in result.stdout and "n/a" in result.stdout

    asked = cli("eval", str(tmp_path / "run"), "--data", str(shapes_folder), "--metrics", "lpips", env=env)
    assert asked.returncode == 2 and "Traceback" not in asked.stderr
    assert "--lpips-weights" in asked.stderr
    unknown = cli("eval", str(tmp_path / "run"), "--data", str(shapes_folder), "--metrics", "fdi", env=env)
    assert unknown.returncode == 2 and 'Did you mean "fid"' in unknown.stderr


def test_compare_trains_both_on_the_same_data_and_reports_one_table_and_one_picture(shapes_folder, classifier, tmp_path, cli):
    """StarGAN (1 generator for 3 domains) against CycleGAN (3 pairwise models, 6 generators), 2 steps each."""
    out = tmp_path / "cmp"
    result = cli("compare", "stargan", "cyclegan", "--data", str(shapes_folder), "--steps", "2", "--out", str(out),
                 "--metrics", "params,fid,domain_accuracy,content", "--fid-weights", "random", "--num-val", "2",
                 "--num-real", "4", "--classifier", str(classifier.folder), "-q")
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "compare.json").read_text())
    stargan, cyclegan = report["models"]["stargan"], report["models"]["cyclegan"]
    assert (stargan["generators"], stargan["models"]) == (1, 1)
    assert (cyclegan["generators"], cyclegan["models"]) == (6, 3)
    assert sorted(Path(p).name for p in cyclegan["paths"]) == ["cyclegan-blue-green", "cyclegan-blue-red", "cyclegan-green-red"]
    for m in (stargan, cyclegan):
        assert m["train"]["train_img_per_s"] > 0 and m["train"]["peak_mem_mb"] > 0
        assert len(m["eval"]["tasks"]) == 6  # every ordered pair of the 3 domains, for both
        assert m["eval"]["metrics"]["fid"]["values"]["fid/fixed"] > 0
    assert cyclegan["eval"]["metrics"]["params"]["values"]["params/inference"] > 0
    markdown = (out / "compare.md").read_text()
    assert "| generators for k domains | 1 | 6 |" in markdown and "compare.png" in markdown
    assert "RANDOM INIT" in markdown  # the protocol stamp travels with the numbers
    picture = Image.open(out / "compare.png")
    assert picture.width > 7 * 64 and picture.height > 3 * 64  # 1 input + 2 x 3 target columns; 2 rows per domain
    assert "generators for k domains" in result.stdout
    # a second run reuses the finished trainings instead of training again
    again = cli("compare", "stargan", "cyclegan", "--data", str(shapes_folder), "--steps", "2", "--out", str(out),
                "--metrics", "params", "--classifier", str(classifier.folder), "-q")
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("reusing the finished run") == 4
