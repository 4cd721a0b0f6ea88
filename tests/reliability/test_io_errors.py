"""Every command, every I/O error: one sentence, nothing half-written, the previous checkpoint kept (issue 16, class 7).

The disks are real kernel refusals, not mocks:

* **read-only**: a read-only tmpfs mounted over an empty folder when we may mount (root with CAP_SYS_ADMIN),
  else ``chmod 555`` when we are not root (permission is then denied), else a folder under ``/sys`` (sysfs:
  no new files, read-only in containers);
* **full**: ``RLIMIT_FSIZE`` lowered in this process with SIGXFSZ ignored, so a write past the limit fails with
  ``EFBIG`` exactly where a full disk fails with ``ENOSPC`` (the message names both);
* **an --out that is a file**, or that lies under one (``ENOTDIR``).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
from pathlib import Path

import pytest

from tests.reliability.helpers import BAD_INPUT, cli_error, save_png, tiny_doc, tiny_model_folder, write_recipe

pytestmark = pytest.mark.reliability


@contextlib.contextmanager
def file_size_limit(nbytes: int):
    """Writes past ``nbytes`` in any one file fail with EFBIG (what a disk that fills does with ENOSPC)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel's SIGXFSZ ends the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


@pytest.fixture
def read_only(tmp_path) -> Path:
    """An existing folder in which nothing can be created (see the module docstring for how)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode == 0:
        try:
            yield folder
        finally:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        return
    yield Path("/sys/ganzoo-reliability")  # root without mount rights: sysfs takes no new files


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_model_folder(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    return save_png(tmp_path_factory.mktemp("photos") / "a.png", colour=(10, 200, 30))


@pytest.fixture(scope="module")
def official(tmp_path_factory) -> Path:
    """A small official CycleGAN generator checkpoint to convert."""
    import torch
    from ganzoo_cyclegan.networks import ResnetGenerator

    path = tmp_path_factory.mktemp("official") / "latest_net_G.pth"
    torch.save(ResnetGenerator(ngf=4, n_blocks=2).state_dict(), path)
    return path


def command(name: str, out: Path, model: Path, photo: Path, official: Path, tmp: Path) -> list[str]:
    """The command ``name`` writing to ``out``."""
    if name == "translate":
        return ["translate", str(model), "--input", str(photo), "--target", "green", "--out", str(out), "--device", "cpu"]
    if name == "sample":
        return ["sample", str(model), "--input", str(photo), "--out", str(out), "--device", "cpu", "--num", "2", "--frames", "2"]
    if name == "convert":
        return ["convert", "cyclegan", str(official), str(out), "--image-size", "32"]
    if name == "make-shapes":
        return ["make-shapes", str(out), "--img-size", "8", "--train", "1", "--val", "1"]
    if name == "bench --json":
        recipe = write_recipe(tmp / "bench.yaml", tiny_doc())
        return ["bench", str(recipe), "--steps", "1", "--warmup", "0", "--batch", "2", "--device", "cpu", "--json", str(out / "b.json")]
    raise AssertionError(name)


COMMANDS = ["translate", "sample", "convert", "make-shapes", "bench --json"]


def hidden_leftovers(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob(".*")] if folder.is_dir() else []


@BAD_INPUT
@pytest.mark.parametrize("name", COMMANDS)
def test_an_out_that_is_a_file_or_lies_under_one_is_one_sentence(tmp_path, name, model, photo, official):
    taken = tmp_path / "taken"
    taken.write_text("the user's file")
    if name == "bench --json":  # its output is a file: a folder where the file goes, and a file where a folder goes
        (tmp_path / "dir.json").mkdir()
        args = command(name, tmp_path, model, photo, official, tmp_path)
        args[-1] = str(tmp_path / "dir.json")
        assert "is a folder" in cli_error(*args)
    else:
        sentence = cli_error(*command(name, taken, model, photo, official, tmp_path))
        assert str(taken) in sentence and "file" in sentence
    sentence = cli_error(*command(name, taken / "sub", model, photo, official, tmp_path))
    assert str(taken) in sentence and "file" in sentence
    assert taken.read_text() == "the user's file"


@BAD_INPUT
@pytest.mark.parametrize("name", COMMANDS)
def test_a_read_only_out_is_one_sentence(tmp_path, name, model, photo, official, read_only):
    out = read_only / "out"
    sentence = cli_error(*command(name, out, model, photo, official, tmp_path))
    assert str(out) in sentence or str(read_only) in sentence
    assert not out.exists()


@BAD_INPUT
@pytest.mark.parametrize("name", COMMANDS)
def test_a_full_disk_is_one_sentence_and_leaves_no_half_written_file(tmp_path, name, model, photo, official, monkeypatch):
    out = tmp_path / "out"
    args = command(name, out, model, photo, official, tmp_path)
    if name == "bench --json":  # the measurement takes a minute on a busy CPU; what is tested here is writing its JSON
        import ganzoo.bench

        monkeypatch.setattr(ganzoo.bench, "run_bench", lambda *a, **k: {"model": "stargan_v2", "train": {"img_per_s": 1.0}})
        monkeypatch.setattr(ganzoo.bench, "print_table", lambda result, console: None)
    with file_size_limit(16):  # smaller than any image, JSON or weights file these commands write
        sentence = cli_error(*args)
    assert "full" in sentence and str(out) in sentence, sentence
    assert hidden_leftovers(out) == []
    for path in out.rglob("*") if out.is_dir() else []:
        assert path.is_dir() or path.stat().st_size <= 16 and path.suffix not in (".png", ".json", ".safetensors"), path


@BAD_INPUT
def test_push_with_a_full_or_read_only_staging_disk_is_one_sentence(tmp_path, model, read_only, monkeypatch):
    import tempfile

    with file_size_limit(16):
        sentence = cli_error("push", str(model), "org/tiny")
    assert "full" in sentence
    monkeypatch.setattr(tempfile, "tempdir", str(read_only))  # where push stages the upload
    sentence = cli_error("push", str(model), "org/tiny")
    assert str(read_only) in sentence


@BAD_INPUT
def test_a_disk_that_fills_during_training_stops_with_one_sentence_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    import ganzoo
    from ganzoo import checkpoint as ckpt
    from ganzoo.run_dir import RunDir

    recipe = write_recipe(tmp_path / "r.yaml", tiny_doc(train={"steps": 4, "checkpoint_every": 2, "sample_every": 0,
                                                              "threads": 1}))
    run = tmp_path / "run"
    real_write = RunDir.write_checkpoint
    limit = contextlib.ExitStack()

    def then_the_disk_fills(self, *args, **kwargs):
        folder = real_write(self, *args, **kwargs)
        limit.enter_context(file_size_limit(16 * 1024))  # after the first checkpoint: the weights no longer fit
        return folder

    monkeypatch.setattr(RunDir, "write_checkpoint", then_the_disk_fills)
    with limit:
        sentence = cli_error("run", str(recipe), "--out", str(run), "-q")
    assert "step 4" in sentence and "full" in sentence and "step_00000002" in sentence and "--resume" in sentence
    assert json.loads((run / "latest.json").read_text())["step"] == 2
    assert ganzoo.load(str(run)).step == 2
    assert ckpt.read_train_state(run / "checkpoints" / "step_00000002")["step"] == 2
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000002"]  # no half-written step_4
