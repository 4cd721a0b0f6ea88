"""Hub ids and endpoints: ids the Hub would refuse (``org/..``, a trailing newline, ``--``) are refused by our own
check before the client sees them; an endpoint that accepts the connection and never answers is given up on after
GANZOO_HUB_TIMEOUT seconds (default 30) with one sentence; the client's retry warnings stay out of the terminal
unless ``ganzoo --verbose``."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.reliability.helpers import BAD_INPUT, assert_one_sentence, cli_error

pytestmark = pytest.mark.reliability


BAD_IDS = ["org/..", "org/tiny\n", "org/a--b", "org/.hidden", "org/" + "x" * 97, "org/name-", "org/na\u00efve"]


@BAD_INPUT
@pytest.mark.parametrize("repo_id", BAD_IDS, ids=repr)
def test_ids_the_hub_would_refuse_never_reach_the_client(repo_id, tmp_path, monkeypatch):
    import huggingface_hub

    def client_called(*args, **kwargs):
        raise AssertionError("the Hub client was called")

    for name in ("hf_hub_download", "snapshot_download"):
        monkeypatch.setattr(huggingface_hub, name, client_called)
    message = cli_error("pull", repo_id, "--local-dir", str(tmp_path / "copy"))
    assert "is not a Hub repo id" in message and "org/name" in message, message
    assert not (tmp_path / "copy").exists()


def test_valid_ids_pass_the_check():
    from ganzoo.hub import split_hub_id, valid_repo_id

    for repo_id in ("org/tiny", "Org-1/my_model.v2", "a/b", "org/" + "x" * 96):
        assert valid_repo_id(repo_id), repo_id
    assert split_hub_id("org/tiny@v1.0") == ("org/tiny", "v1.0")
    for repo_id in ("../org", "org/ tiny", "org/tiny/extra", "org", "/tiny"):  # refused before this round too
        assert not valid_repo_id(repo_id), repo_id


class SilentServer:
    """Accepts every connection and never answers: a hung proxy or a half-dead mirror."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.endpoint = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)

    def stop(self):
        self.sock.close()
        for conn in self.connections:
            conn.close()


TIMEOUT_S = 3


@BAD_INPUT
def test_an_endpoint_that_never_answers_times_out_with_a_sentence(tmp_path):
    server = SilentServer()
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": server.endpoint, "HF_HUB_OFFLINE": "0",
           "HF_HUB_DISABLE_TELEMETRY": "1", "GANZOO_HUB_TIMEOUT": str(TIMEOUT_S), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    import os

    def start(*extra):
        return subprocess.Popen([sys.executable, "-m", "ganzoo", *extra, "pull", "org/tiny"], env={**os.environ, **env},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    try:
        started = time.monotonic()
        quiet = start()
        quiet_err = quiet.communicate(timeout=120)[1]
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert server.connections, "the client never connected"
    assert quiet.returncode == 2, quiet_err
    lines = [line for line in quiet_err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), quiet_err  # no retry noise
    message = lines[0][len("error: "):]
    assert_one_sentence(message)
    assert server.endpoint in message and f"within {TIMEOUT_S} s" in message and "GANZOO_HUB_TIMEOUT" in message, message
    assert elapsed < 90, elapsed  # start-up (a few seconds) plus the 3 s bound, not the client's minutes of retries


def test_client_warnings_are_quiet_unless_verbose(caplog):
    import logging

    from ganzoo import console
    from ganzoo.cli import app
    from ganzoo.hub import quiet_client
    from typer.testing import CliRunner

    client = logging.getLogger("huggingface_hub.utils._http")
    for verbose in (False, True):
        CliRunner().invoke(app, ["--verbose", "list", "models"] if verbose else ["list", "models"])
        assert console.VERBOSE is verbose
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="huggingface_hub"), quiet_client():
            client.warning("Retrying in 1s [Retry 1/5].")
        assert ("Retrying" in caplog.text) is verbose, (verbose, caplog.text)
    console.VERBOSE = False


@BAD_INPUT
def test_a_timeout_that_is_not_a_number_is_one_sentence(tmp_path, monkeypatch):
    from ganzoo.errors import GanzooError
    from ganzoo.hub import hub_timeout

    monkeypatch.setenv("GANZOO_HUB_TIMEOUT", "soon")
    with pytest.raises(GanzooError) as info:
        hub_timeout()
    assert "GANZOO_HUB_TIMEOUT='soon'" in str(info.value)
