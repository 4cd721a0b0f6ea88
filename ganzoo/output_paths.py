"""Where a command's outputs go, and what an I/O error there tells the user.

Commands that write files into ``--out`` (``translate``, ``sample``, ``convert``, ``make-shapes``, ...) share
these rules: an output folder is never the input folder or inside it (the outputs would overwrite or mix
with the sources), a file is never taken for a folder, two sources with the same name in different
sub-folders keep their relative paths instead of overwriting each other, and an ``OSError`` (a full or
read-only disk, a path under a file) becomes one sentence naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Iterable, Iterator

from ganzoo.errors import OutputError

#: What each common errno means for someone writing files, as a phrase.
REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the disk is full or a file size limit was reached",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "the operation is not permitted there",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder, not a file",
    errno.EEXIST: "something already exists there",
    errno.ENOENT: "a folder on the way does not exist and cannot be created there",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EIO: "the device reported an I/O error",
}


def reason(exc: OSError) -> str:
    """A short phrase for what went wrong in ``exc``."""
    if exc.errno in REASONS:
        return REASONS[exc.errno]
    return (exc.strerror or str(exc) or type(exc).__name__).rstrip(".")


FIX = "free some space or choose a writable output folder"


def io_error(exc: OSError, what: str = "", path: str | Path | None = None, *, fix: str = FIX) -> OutputError:
    """One sentence for an ``OSError`` met while writing: which path (``path``, else the error's), why, what to do."""
    where = path or exc.filename
    label = " ".join(str(x) for x in (what, where) if x) or "an output file"
    return OutputError(f"Cannot write {label} ({reason(exc)}); {fix}.")


@contextlib.contextmanager
def writing(what: str = "", path: str | Path | None = None, *, fix: str = FIX) -> Iterator[None]:
    """Turn an ``OSError`` inside the block into an :class:`OutputError` sentence (naming ``path`` when given:
    the destination rather than the temp file beside it)."""
    try:
        yield
    except OSError as exc:
        raise io_error(exc, what, path, fix=fix) from None


def check_output_folder(out: Path, flag: str = "--out") -> None:
    """Refuse an output folder that is a file, lies under a file, or lies on a read-only or unwritable folder,
    before any work is done (the writes themselves still turn an ``OSError`` into a sentence)."""
    out = Path(out)
    for path in (out, *out.absolute().parents):
        if path.exists() or path.is_symlink():
            if not path.is_dir():
                where = "is a file" if path == out else f"lies under the file {path}"
                raise OutputError(f"{flag} {out} {where}, not a folder; choose a folder for the outputs.")
            if not os.access(path, os.W_OK | os.X_OK):
                where = "" if path == out else f" ({path} is where it would be created)"
                raise OutputError(f"{flag} {out} is not writable{where}: the file system is read-only or permission is "
                                  "denied; choose a writable folder.")
            return


def check_output_file(path: Path, flag: str) -> None:
    """Refuse an output file path that is a folder, or whose folder is a file, before any work is done."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{flag} {path} is a folder; give a file name for the output (e.g. {path / 'results.json'}).")
    check_output_folder(path.parent, flag=f"The folder of {flag} {path},")


def write_text_file(path: Path, text: str, flag: str) -> None:
    """Write an output text file beside its destination and rename it into place; an I/O error is a sentence."""
    from ganzoo.image_output import written_beside

    path = Path(path)
    with writing(flag, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with written_beside(path) as tmp:
            tmp.write_text(text, encoding="utf-8")


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def refuse_out_inside_input(out: Path, inputs: Iterable[Path], *, out_flag: str = "--out", in_flag: str = "--input") -> None:
    """Refuse an output folder that is an input folder or lies inside one (the outputs would overwrite the sources
    or be read back as inputs next time), or an input file that would be written over."""
    for source in inputs:
        source = Path(source)
        if source.is_dir() and _inside(out, source):
            same = "is" if out.resolve() == source.resolve() else "lies inside"
            raise OutputError(f"{out_flag} {out} {same} {in_flag} {source}, so the outputs would overwrite or mix with the "
                              f"sources; choose an output folder outside {source}.")


def refuse_writing_over(sources: Iterable[Path], destinations: Iterable[Path], *, in_flag: str = "--input") -> None:
    """Refuse when an output would land on one of its sources (``--input photos/a.png --out photos``)."""
    resolved = {Path(p).resolve(): Path(p) for p in sources}
    for dest in destinations:
        hit = resolved.get(Path(dest).resolve())
        if hit is not None:
            raise OutputError(f"The output {dest} would overwrite the {in_flag} image {hit}; choose an output folder that "
                              "holds none of the sources.")


def output_names(files: list[Path], root: Path | None, num: int = 1) -> list[list[Path]]:
    """For each source file, the relative output paths of its ``num`` outputs.

    Sources from a folder ``root`` keep their path relative to it (``a/cat.png`` and ``b/cat.png`` stay
    apart); a single file keeps its name. With ``num > 1`` each output gets ``_<k>`` before the suffix.
    """
    planned = []
    for f in files:
        rel = f.relative_to(root) if root is not None else Path(f.name)
        planned.append([rel if num == 1 else rel.with_name(f"{rel.stem}_{k}{rel.suffix}") for k in range(num)])
    return planned


def unique_names(names: list[str]) -> tuple[list[str], int]:
    """``names`` with repeats told apart (``cat``, ``cat`` -> ``cat``, ``cat (2)``), and how many were renamed."""
    taken, out, renamed = set(names), [], 0
    seen: dict[str, int] = {}
    for name in names:
        if name not in seen:
            seen[name] = 1
            out.append(name)
            continue
        candidate = name
        while candidate in taken:
            seen[name] += 1
            candidate = f"{name} ({seen[name]})"
        taken.add(candidate)
        out.append(candidate)
        renamed += 1
    return out, renamed
