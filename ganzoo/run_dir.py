"""The run directory: what a training run leaves on disk, and how it survives a kill.

::

    recipe.yaml                  the resolved recipe the run trains
    metrics.jsonl                one JSON row per log interval (losses) and per evaluation
    latest.json                  {"step": N, "path": "checkpoints/step_0000000N"}: the newest complete checkpoint
    checkpoints/step_XXXXXXXX/   model folders with train_state/ (see :mod:`ganzoo.checkpoint`)
    samples/step_XXXXXXXX.png    sample sheets
    best/                        the best model by ``eval.best`` (see :mod:`ganzoo.periodic_eval`)

Every file is written beside its destination and renamed into place, so a kill at
any moment leaves the previous state whole; what a kill leaves half-made is hidden
(a leading dot) and removed by the next resume.

A run directory is claimed before anything is written into it: an exclusive lock on
``.ganzoo-run.lock`` held for the whole run (the kernel drops it when the process
ends, a kill included), taken before the folder is checked for files. Two runs
never share one directory, and a fresh run never starts in a folder that holds
anything (the user's files, another run), whatever moment the other started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

from ganzoo import checkpoint as ckpt
from ganzoo.errors import TrainingError
from ganzoo.output_paths import reason

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the emptiness check still applies
    fcntl = None

#: The lock file a running process holds (see the module docstring).
LOCK_NAME = ".ganzoo-run.lock"


class RunDirTaken(TrainingError):
    """The run directory is in use by another process or holds files already."""


#: Room left for samples and logs besides the checkpoints when checking free disk space.
LOG_AND_SAMPLE_BYTES = 16 * 2**20


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.samples = self.path / "samples"
        self.log = self.path / "metrics.jsonl"
        self.latest = self.path / "latest.json"

    # ------------------------------------------------------------------ starting

    def holds_run(self) -> bool:
        return self.latest.exists()

    def contents(self) -> list[Path]:
        """What the folder holds besides a lock file (empty when it does not exist or is not a folder)."""
        if not self.path.is_dir():
            return []
        return sorted(p for p in self.path.iterdir() if p.name != LOCK_NAME)

    def refuse_taken(self) -> None:
        """A fresh run's check: the folder must be new or empty (neither another run nor the user's own files)."""
        if self.path.exists() and not self.path.is_dir():
            raise RunDirTaken(f"--out {self.path} is a file, not a folder; choose a new or empty folder for the run.")
        if self.holds_run():
            raise RunDirTaken(f"{self.path} already holds a run; resume it with --resume {self.path} or choose another --out.")
        held = self.contents()
        if held:
            names = ", ".join(p.name for p in held[:3]) + (f" and {len(held) - 3} more" if len(held) > 3 else "")
            what = ("a run that was stopped before its first checkpoint" if (self.path / "recipe.yaml").is_file()
                    else "files that are not a ganzoo run")
            raise RunDirTaken(f"{self.path} is not empty ({names}: {what}); choose a new or empty --out, or continue a "
                              f"ganzoo run there with --resume {self.path}.")

    def check_free(self) -> None:
        """Refuse at once (before any work) when another process holds the folder; :meth:`claim` decides later."""
        if fcntl is None or not (self.path / LOCK_NAME).is_file():
            return
        try:
            fd = os.open(self.path / LOCK_NAME, os.O_RDONLY)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirTaken(f"{self.path} is in use by another ganzoo run right now; wait for it to end or choose "
                              "another --out.") from None
        finally:
            os.close(fd)

    def claim(self, *, resume: bool) -> None:
        """Create the folder and lock it for this process; a fresh run then checks that it is empty.

        The lock comes first, so a second process that checked the folder a moment earlier finds it locked, or
        finds the first one's files; either way it gets a sentence, never a shared directory.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    # The file locked must still be the one in the folder (a failed start removes its own).
                    current = os.stat(self.path / LOCK_NAME).st_ino
                except (BlockingIOError, FileNotFoundError):
                    current = None
                if current != os.fstat(fd).st_ino:
                    raise RunDirTaken(f"{self.path} is in use by another ganzoo run right now; wait for it to end or "
                                      "choose another --out.")
            if not resume:
                self.refuse_taken()
        except BaseException:
            os.close(fd)
            raise
        self._lock_fd = fd

    def release(self) -> None:
        """Drop the lock (the process ending drops it too)."""
        fd = getattr(self, "_lock_fd", None)
        if fd is not None:
            self._lock_fd = None
            os.close(fd)

    def prepare(self, *, resume: bool, checkpoint_bytes: int, keep_checkpoints: int) -> None:
        """Claim the folder, create the sub-folders, check that they are writable and that the disk holds the
        checkpoints to keep."""
        created = [p for p in (self.checkpoints, *self.checkpoints.parents) if not p.exists()]  # deepest first
        self._lock_fd = None
        try:
            try:
                self.claim(resume=resume)
                self.checkpoints.mkdir(parents=True, exist_ok=True)
                probe = self.path / ".write-test"
                probe.write_bytes(b"0" * 1024)
                probe.unlink()
            except OSError as exc:
                raise TrainingError(f"Cannot write to the output directory {self.path} ({reason(exc)}); "
                                    "choose a writable --out.") from None
            self.check_disk_space(resume=resume, checkpoint_bytes=checkpoint_bytes, keep_checkpoints=keep_checkpoints)
        except TrainingError as exc:
            if isinstance(exc, RunDirTaken):
                raise
            if self._lock_fd is not None and self.path in created:  # ours: a failed start leaves no half-made run directory
                with contextlib.suppress(OSError):
                    (self.path / LOCK_NAME).unlink()
                for path in created:
                    with contextlib.suppress(OSError):
                        path.rmdir()
            self.release()
            raise
        self.samples.mkdir(exist_ok=True)
        if resume:
            self.remove_leftovers()

    def check_disk_space(self, *, resume: bool, checkpoint_bytes: int, keep_checkpoints: int) -> None:
        """Refuse to start when the disk cannot hold the checkpoints the run will keep (plus the one being written)."""
        try:
            free = shutil.disk_usage(self.path).free
        except OSError:
            return  # no usage figures (some network file systems): the write probe still runs
        have = len(list(self.checkpoints.glob("step_*"))) if resume else 0
        count = max(1, keep_checkpoints + 1 - have)
        need = count * checkpoint_bytes + LOG_AND_SAMPLE_BYTES
        if free < need:
            raise TrainingError(
                f"The disk holding {self.path} has {human_bytes(free)} free but this run needs about {human_bytes(need)} "
                f"({count} checkpoint(s) of {human_bytes(checkpoint_bytes)}); free some space, choose another --out "
                "or lower train.keep_checkpoints."
            )

    def remove_leftovers(self) -> None:
        """Delete what a killed process left half-made: hidden temp checkpoint folders and temp files (never a
        visible checkpoint; those are only ever complete)."""
        for path in self.checkpoints.glob(".step_*"):
            shutil.rmtree(path, ignore_errors=True)
        for path in self.path.glob(".*.tmp"):
            path.unlink(missing_ok=True)
        for path in self.path.glob(".best.*"):  # a best/ folder caught half-written or half-replaced
            shutil.rmtree(path, ignore_errors=True)

    def start_fresh(self, recipe_yaml: str) -> None:
        """A fresh run, or one killed before its first checkpoint (nothing to restore: it starts over, and the
        log lines it wrote go)."""
        self.log.unlink(missing_ok=True)
        ckpt.atomic_write_text(self.path / "recipe.yaml", recipe_yaml)

    # ------------------------------------------------------------------ checkpoints

    def has_checkpoint(self) -> bool:
        return self.latest.is_file() or any((c / ckpt.CONFIG_NAME).is_file() for c in self.checkpoints.glob("step_*"))

    def last_checkpoint(self) -> Path | None:
        """The newest complete checkpoint folder of this run, or None before the first one."""
        return ckpt.resolve_model_folder(self.path) if self.latest.exists() else None

    def write_checkpoint(self, model, step: int, train_state: dict, *, keep: int, plugin: str | None = None) -> Path:
        """Write ``checkpoints/step_<step>``, point latest.json at it, then delete all but the newest ``keep``."""
        name = f"step_{step:08d}"
        folder = ckpt.write_model_folder(model, self.checkpoints / name, step=step, train_state=train_state, plugin=plugin)
        ckpt.atomic_write_text(self.latest, json.dumps({"step": step, "path": f"checkpoints/{name}"}) + "\n")
        old = sorted(p for p in self.checkpoints.glob("step_*") if p.name != name)
        for stale in old[: max(0, len(old) - (keep - 1))]:
            # Renamed out of sight first: a kill during the deletion leaves a hidden leftover, never a visible
            # step_* folder with half its files gone.
            hidden = stale.with_name(f".{stale.name}.stale-{os.getpid()}")
            os.replace(stale, hidden)
            shutil.rmtree(hidden, ignore_errors=True)
        return folder

    # ------------------------------------------------------------------ the log

    def truncate_log(self, step: int) -> None:
        """Drop log rows written after ``step`` by an interrupted run (a kill can leave the last one cut short), so
        the resumed run appends each step's rows once."""
        if self.log.exists():
            kept = [line for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines()
                    if (at := log_step(line)) is not None and at <= step]
            ckpt.atomic_write_text(self.log, "".join(line + "\n" for line in kept))


def log_step(line: str) -> int | None:
    """The step of a metrics.jsonl line; None for a line cut short or otherwise unreadable."""
    try:
        step = json.loads(line).get("step")
    except (json.JSONDecodeError, AttributeError):
        return None
    return step if isinstance(step, int) else None


def human_bytes(num_bytes: float) -> str:
    if num_bytes < 1024:
        return f"{num_bytes:.0f} bytes"
    for suffix in ("KiB", "MiB", "GiB"):
        num_bytes /= 1024
        if num_bytes < 1024:
            break
    return f"{num_bytes:.1f} {suffix}"
