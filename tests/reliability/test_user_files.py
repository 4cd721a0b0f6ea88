"""A user's files are never overwritten or deleted without being asked (issue 16, class 1).

A run directory is claimed atomically (a lock, then the emptiness check) and a folder holding anything is
refused unless ``--resume`` names it; ``translate`` and ``sample`` refuse an ``--out`` inside ``--input``, keep
sources with the same name apart, and rename each output into place only once it is complete.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.helpers import BAD_INPUT, cli_error, invoke, save_png, tiny_doc, tiny_model_folder, tree, write_recipe

pytestmark = pytest.mark.reliability

ONE_STEP = {"train": {"steps": 1, "checkpoint_every": 1, "sample_every": 0, "threads": 1}}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_model_folder(tmp_path_factory.mktemp("model") / "tiny")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- run directories


@BAD_INPUT
@pytest.mark.parametrize("files", [
    {"recipe.yaml": "model: my own notes\n", "metrics.jsonl": '{"step": 1, "mine": true}\n'},  # the user's own files
    {"recipe.yaml": "model: stargan_v2\n", "checkpoints/.keep": ""},  # a run stopped before its first checkpoint
    {"notes.txt": "thesis draft"},
])
def test_an_out_folder_that_holds_files_is_refused_and_left_as_it_was(tmp_path, files):
    out = tmp_path / "out"
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    before = snapshot(out)
    sentence = cli_error("run", str(write_recipe(tmp_path / "r.yaml", tiny_doc(**ONE_STEP))), "--out", str(out), "-q")
    assert str(out) in sentence and "--resume" in sentence and "not empty" in sentence
    assert snapshot(out) == before


@BAD_INPUT
def test_a_run_directory_in_use_by_another_process_is_refused(tmp_path):
    from ganzoo.run_dir import LOCK_NAME, RunDir

    out = tmp_path / "out"
    recipe = write_recipe(tmp_path / "r.yaml", tiny_doc(**ONE_STEP))
    other = RunDir(out)
    other.claim(resume=False)  # what a running `ganzoo run --out out` holds (an flock: another open file)
    try:
        for args in (["--out", str(out)], ["--resume", str(out)]):
            if args[0] == "--resume":  # the other run has written its recipe, not yet a checkpoint
                (out / "recipe.yaml").write_text(recipe.read_text())
            sentence = cli_error("run", str(recipe), *args, "-q")
            assert "in use by another ganzoo run" in sentence, sentence
    finally:
        other.release()
    assert sorted(p.name for p in out.iterdir()) == sorted([LOCK_NAME, "recipe.yaml"])  # the refused runs wrote nothing


def test_a_taken_default_run_directory_sends_the_second_run_to_its_own(tmp_path, monkeypatch):
    # Two recipes with the same stem started in the same second share the default name runs/<stem>-<time>.
    from ganzoo import trainer
    from ganzoo.run_dir import LOCK_NAME, RunDir

    recipe = write_recipe(tmp_path / "a" / "tiny.yaml", tiny_doc(**ONE_STEP))
    monkeypatch.chdir(tmp_path)
    taken = Path("runs") / "tiny-20261202-060000"
    monkeypatch.setattr(trainer, "default_run_dir", lambda path: taken)
    first = RunDir(taken)
    first.claim(resume=False)  # the first run holds it and has not written latest.json yet
    try:
        outcome = invoke("run", str(recipe), "-q")
    finally:
        first.release()
    assert outcome.code == 0, outcome.stderr
    assert tree(tmp_path / taken) == [LOCK_NAME]  # the first run's directory: untouched
    second = tmp_path / "runs" / "tiny-20261202-060000-2"
    assert (second / "latest.json").is_file() and "tiny-20261202-060000-2" in outcome.stderr


# --------------------------------------------------------------------------- translate and sample


@BAD_INPUT
def test_translate_refuses_an_out_that_is_or_lies_inside_the_input(tmp_path, model):
    photos = tmp_path / "photos"
    save_png(photos / "a.png", colour=(10, 200, 30))
    save_png(photos / "sub" / "b.png", colour=(200, 10, 30))
    before = snapshot(photos)
    for out in (photos, photos / "translated", photos / "sub"):
        sentence = cli_error("translate", str(model), "--input", str(photos), "--target", "green", "--out", str(out),
                             "--device", "cpu")
        assert str(photos) in sentence and "overwrite" in sentence
    # a single source file with --out its own folder would be written over itself
    sentence = cli_error("translate", str(model), "--input", str(photos / "a.png"), "--target", "green", "--out", str(photos),
                         "--device", "cpu")
    assert str(photos / "a.png") in sentence
    assert snapshot(photos) == before and not (photos / "translated").exists()


def test_translate_keeps_same_named_sources_from_sub_folders_apart_and_counts_true(tmp_path, model):
    photos = tmp_path / "photos"
    save_png(photos / "cats" / "pet.png", colour=(10, 200, 30))
    save_png(photos / "dogs" / "pet.png", colour=(200, 10, 30))
    save_png(photos / "pet.png", colour=(20, 20, 200))
    out = tmp_path / "out"
    outcome = invoke("translate", str(model), "--input", str(photos), "--target", "green", "--out", str(out), "--device", "cpu")
    assert outcome.code == 0, outcome.stderr
    assert tree(out) == ["cats", "cats/pet.png", "dogs", "dogs/pet.png", "pet.png"]
    assert "wrote 3 image(s)" in outcome.stderr
    assert len({p.read_bytes() for p in out.rglob("*.png")}) == 3  # three different translations, none overwritten
    outcome = invoke("translate", str(model), "--input", str(photos), "--target", "green", "--out", str(tmp_path / "two"),
                     "--device", "cpu", "--num", "2")
    assert outcome.code == 0 and "wrote 6 image(s)" in outcome.stderr
    assert len(list((tmp_path / "two").rglob("*.png"))) == 6


class Killed(BaseException):
    """Stands in for a kill in the middle of writing a file: nothing catches it."""


def test_a_kill_while_an_image_is_written_leaves_no_truncated_file_under_its_name(tmp_path, model, monkeypatch):
    from PIL import Image

    photos = tmp_path / "photos"
    for i in range(3):
        save_png(photos / f"{i}.png", colour=(40 * i, 100, 30))
    out = tmp_path / "out"
    save_png(out / "1.png", colour=(1, 2, 3))  # last time's output, to be replaced
    old = (out / "1.png").read_bytes()
    real_save, calls = Image.Image.save, []

    def dies_half_way(self, fp, *args, **kwargs):
        calls.append(fp)
        if len(calls) == 2:  # the second image: half its bytes reach the disk, then the process dies
            real_save(self, fp, *args, **kwargs)
            data = Path(fp).read_bytes()
            Path(fp).write_bytes(data[: len(data) // 2])
            raise Killed
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", dies_half_way)
    with pytest.raises(Killed):
        invoke("translate", str(model), "--input", str(photos), "--target", "green", "--out", str(out), "--device", "cpu",
               "--batch-size", "1")
    assert (out / "1.png").read_bytes() == old  # the previous output whole, not half of the new one
    Image.open(out / "0.png").load()  # the finished one is complete
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "1.png"]  # no half-written file under a final name


@BAD_INPUT
def test_sample_refuses_an_out_inside_an_input_and_labels_same_named_sources_apart(tmp_path, model):
    photos = tmp_path / "photos"
    save_png(photos / "cats" / "pet.png", colour=(10, 200, 30))
    save_png(photos / "dogs" / "pet.png", colour=(200, 10, 30))
    before = snapshot(photos)
    sentence = cli_error("sample", str(model), "--input", str(photos), "--out", str(photos / "sheets"), "--device", "cpu",
                         "--num", "2", "--frames", "2")
    assert "overwrite or mix" in sentence and str(photos) in sentence
    assert snapshot(photos) == before
    out = tmp_path / "sheets"
    outcome = invoke("sample", str(model), "--input", str(photos), "--out", str(out), "--device", "cpu", "--num", "2", "--frames", "2")
    assert outcome.code == 0, outcome.stderr
    assert "labels got a number" in outcome.stderr
    import json

    layouts = [json.loads(p.read_text()) for p in out.glob("*.json")]
    assert layouts and not [p for p in out.iterdir() if p.name.startswith(".")]  # every sheet renamed into place
    text = json.dumps(layouts)
    assert '"pet"' in text and '"pet (2)"' in text
