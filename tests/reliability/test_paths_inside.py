"""Nothing in a run directory or model folder points outside it (issue 16, class 2).

latest.json names one of the run's own checkpoints, network roles in config.json name files in the folder,
and ``ganzoo push`` uploads the folder's own files only: a symlink out of it, or a FIFO, is refused before
anything reaches the Hub.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.reliability.helpers import BAD_INPUT, cli_error, save_png, tiny_model_folder

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_model_folder(tmp_path_factory.mktemp("model") / "tiny")


def run_dir_around(tmp_path: Path, model: Path, latest_path: str) -> Path:
    """A run directory whose one checkpoint is a copy of ``model``, with latest.json naming ``latest_path``."""
    run = tmp_path / "run"
    shutil.copytree(model, run / "checkpoints" / "step_00000001")
    (run / "latest.json").write_text(json.dumps({"step": 1, "path": latest_path}))
    return run


@BAD_INPUT
@pytest.mark.parametrize("where", ["../elsewhere", "ABSOLUTE", "checkpoints/../../elsewhere", "checkpoints/link"])
def test_latest_json_pointing_outside_the_run_directory_is_refused(tmp_path, model, where):
    elsewhere = tiny_model_folder(tmp_path / "elsewhere", domains=("cat", "dog", "fox"), seed=1)  # a loadable model
    latest = str(elsewhere) if where == "ABSOLUTE" else where
    run = run_dir_around(tmp_path, model, latest)
    if where == "checkpoints/link":
        (run / "checkpoints" / "link").symlink_to(elsewhere)
    save_png(tmp_path / "a.png")
    sentence = cli_error("translate", str(run), "--input", str(tmp_path / "a.png"), "--target", "cat", "--out",
                         str(tmp_path / "out"), "--device", "cpu")
    assert "latest.json" in sentence and "outside" in sentence
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_symlinked_out_of_the_run_directory_is_not_taken_as_its_newest(tmp_path, model):
    import ganzoo

    run = run_dir_around(tmp_path, model, "checkpoints/step_00000001")
    (run / "latest.json").unlink()  # no latest.json: the newest checkpoint folder is used
    elsewhere = tiny_model_folder(tmp_path / "elsewhere", seed=1)
    (run / "checkpoints" / "step_00000009").symlink_to(elsewhere)
    loaded = ganzoo.load(str(run))
    assert Path(loaded.folder).name == "step_00000001"


@BAD_INPUT
@pytest.mark.parametrize("role", ["../../outside", "sub/generator", ".hidden"])
def test_a_network_role_that_is_a_path_is_refused(tmp_path, model, role):
    folder = tmp_path / "model"
    shutil.copytree(model, folder)
    config = json.loads((folder / "config.json").read_text())
    config["networks"][role] = config["networks"].pop("generator")
    (folder / "config.json").write_text(json.dumps(config))
    save_png(tmp_path / "a.png")
    sentence = cli_error("translate", str(folder), "--input", str(tmp_path / "a.png"), "--target", "red", "--out",
                         str(tmp_path / "out"), "--device", "cpu")
    assert "config.json" in sentence and "not a plain name" in sentence


@BAD_INPUT
@pytest.mark.parametrize("kind", ["file symlink", "folder symlink", "fifo"])
def test_push_refuses_symlinks_out_of_the_model_folder_and_special_files(tmp_path, model, kind):
    folder = tmp_path / "model"
    shutil.copytree(model, folder)
    secret = tmp_path / "home" / ".ssh"
    secret.mkdir(parents=True)
    (secret / "id_ed25519").write_text("PRIVATE KEY")
    if kind == "file symlink":
        (folder / "notes.txt").symlink_to(secret / "id_ed25519")
    elif kind == "folder symlink":
        (folder / "extra").symlink_to(secret)
    else:
        os.mkfifo(folder / "pipe")  # copying it would block forever
    sentence = cli_error("push", str(folder), "org/tiny")  # offline (conftest): the refusal comes before any upload
    assert str(folder) in sentence
    assert ("symbolic link" in sentence) if kind != "fifo" else ("FIFO" in sentence)


def test_push_stages_a_hub_cache_snapshot_whose_links_point_into_its_own_blobs(tmp_path, model):
    # What `ganzoo pull` leaves: snapshots/<rev>/<file> -> ../../blobs/<hash>; those links are the folder's own files.
    from ganzoo.hub import stage_folder

    repo = tmp_path / "hub" / "models--org--tiny"
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for i, file in enumerate(sorted(p for p in model.iterdir() if p.is_file())):
        shutil.copyfile(file, repo / "blobs" / f"blob{i}")
        (snapshot / file.name).symlink_to(Path("..", "..", "blobs", f"blob{i}"))
    stage_folder(snapshot, tmp_path / "staging")
    staged = sorted(p.name for p in (tmp_path / "staging").iterdir())
    assert staged == sorted(p.name for p in model.iterdir() if p.is_file())
    assert not any(p.is_symlink() for p in (tmp_path / "staging").iterdir())
