"""Real Hub-protocol servers on loopback for the Hub tests.

- :class:`OlahMirror`: the ``olah`` Hub mirror (a test extra) in offline mode, serving
  git repositories from ``mirrors/{models,datasets}/<org>/<name>``; it answers every
  download route ``huggingface_hub`` and ``datasets`` use, and refuses uploads.
- :class:`UploadServer`: the five routes ``HfApi.create_repo`` / ``create_branch`` /
  ``upload_folder`` call for a small upload, committing into the same mirror folder, so
  ``ganzoo push`` -> ``ganzoo pull`` round-trips through the real client over real HTTP.
- :class:`FileServer`: plain HTTP file serving, standing in for an official release URL.

Every server picks a free port and is stopped by its ``stop()`` (the fixtures always call it).
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

GIT_ENV = {"GIT_AUTHOR_NAME": "ganzoo-tests", "GIT_AUTHOR_EMAIL": "tests@ganzoo.invalid",
           "GIT_COMMITTER_NAME": "ganzoo-tests", "GIT_COMMITTER_EMAIL": "tests@ganzoo.invalid"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-c", "commit.gpgsign=false", *args], cwd=repo, capture_output=True, text=True,
                            env={**os.environ, **GIT_ENV}, check=True)
    return result.stdout.strip()


def git_repo(path: Path, files: dict[str, bytes | str]) -> str:
    """Create a git repository at ``path`` holding ``files``; return the commit id (the Hub revision)."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for name, content in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "test repo")
    return git(path, "rev-parse", "HEAD")


class OlahMirror:
    """``olah-cli`` serving ``root/mirrors`` offline on a free loopback port."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.mirrors = self.root / "mirrors"
        (self.mirrors / "models").mkdir(parents=True, exist_ok=True)
        (self.mirrors / "datasets").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "OlahMirror":
        config = self.root / "olah.toml"
        # hf-netloc points at a dead port: nothing may ever go upstream. metadata-cache-ttl 0 so a
        # commit made by the upload server is visible at once.
        config.write_text(
            "[basic]\n"
            f'host = "127.0.0.1"\nport = {self.port}\n'
            f'repos-path = "{self.root / "olah-cache"}"\n'
            f'mirrors-path = ["{self.mirrors}"]\n'
            'hf-scheme = "http"\nhf-netloc = "127.0.0.1:9"\nhf-lfs-netloc = "127.0.0.1:9"\n'
            "metadata-cache-ttl = 0\n"
            "[accessibility]\noffline = true\n"
        )
        olah_cli = Path(sys.executable).with_name("olah-cli")
        self.log = open(self.root / "olah.log", "wb")
        self.process = subprocess.Popen([str(olah_cli), "-c", str(config)], cwd=self.root, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"olah exited: {(self.root / 'olah.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("olah did not start within 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if getattr(self, "log", None):
            self.log.close()


class _UploadHandler(http.server.BaseHTTPRequestHandler):
    mirrors: Path  # set on the subclass made by UploadServer

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _repo(self, kind: str, repo_id: str) -> Path:
        return self.mirrors / f"{kind}s" / repo_id

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        path = self.path.split("?", 1)[0]
        base = f"http://{self.headers['Host']}"
        if path == "/api/repos/create":
            request = json.loads(body)
            kind = request.get("type") or "model"
            repo_id = f"{request['organization']}/{request['name']}"
            repo = self._repo(kind, repo_id)
            if repo.exists():
                return self._reply(409, {"error": "You already created this repo", "url": f"{base}/{repo_id}"})
            repo.mkdir(parents=True)
            git(repo, "init", "-q", "-b", "main")
            git(repo, "commit", "-q", "--allow-empty", "-m", "initial commit")  # the Hub starts repos with one commit
            return self._reply(200, {"url": f"{base}/{repo_id}"})
        if path == "/api/validate-yaml":
            return self._reply(200, {"errors": [], "warnings": []})
        match = re.fullmatch(r"/api/(model|dataset)s/([^/]+/[^/]+)/(preupload|commit|branch)/(.+)", path)
        if not match:
            return self._reply(404, {"error": f"route {path} is not served by the test upload server"})
        kind, repo_id, action, revision = match.groups()
        repo = self._repo(kind, repo_id)
        if not repo.is_dir():
            return self._reply(404, {"error": "Repository not found"})
        if action == "preupload":
            files = json.loads(body)["files"]
            # Everything "regular": contents travel base64 in the commit call, no LFS/xet round trip.
            return self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                               for f in files]})
        if action == "branch":
            git(repo, "branch", revision)
            return self._reply(200, {})
        return self._commit(repo, repo_id, revision, body, base)

    def _commit(self, repo: Path, repo_id: str, revision: str, body: bytes, base: str) -> None:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header = next(item["value"] for item in lines if item["key"] == "header")
        git(repo, "checkout", "-q", revision)
        try:
            for item in lines:
                value = item["value"]
                target = repo / value.get("path", "")
                if item["key"] == "file":
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(base64.b64decode(value["content"]))
                elif item["key"] == "deletedFile":
                    target.unlink(missing_ok=True)
                elif item["key"] == "deletedFolder":
                    shutil.rmtree(target, ignore_errors=True)
                elif item["key"] != "header":
                    return self._reply(400, {"error": f"operation {item['key']} is not supported by the test server"})
            git(repo, "add", "-A")
            git(repo, "commit", "-q", "--allow-empty", "-m", header.get("summary") or "upload")
            oid = git(repo, "rev-parse", "HEAD")
        finally:
            git(repo, "checkout", "-q", "main")
        self._reply(200, {"commitOid": oid, "commitUrl": f"{base}/{repo_id}/commit/{oid}", "pullRequestUrl": None})


class _ThreadedServer:
    def __init__(self, handler):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class UploadServer(_ThreadedServer):
    """Accepts small uploads and commits them into ``mirrors`` (olah's mirror folder)."""

    def __init__(self, mirrors: Path):
        super().__init__(type("Handler", (_UploadHandler,), {"mirrors": Path(mirrors)}))


class _QuietFileHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class FileServer(_ThreadedServer):
    """Serves the files of ``folder`` over plain HTTP (an official release's download link)."""

    def __init__(self, folder: Path):
        super().__init__(functools.partial(_QuietFileHandler, directory=str(folder)))
