"""Which files of a tree are YAML files we may read and rewrite, and how to read/write them byte-exactly.

`discover` walks a tree without ever following a symlink (file or directory), skips `.git`, non-regular
files and binary files (a NUL byte in the first 8 KiB), and yields the YAML files' paths sorted: `*.yaml`,
`*.yml`, and kustomize's `Kustomization` (is_yaml_name).
`read_text` / `write_atomic` keep every byte: no newline translation, a BOM stays in the str.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from gitops_cli import interrupts
from gitops_cli.errors import REFUSED_WRITES, UsageError, refused_write
from gitops_cli.kustomize import YAML_ENDINGS as YAML_ENDINGS  # re-exported: the YAML file-name rule lives there
from gitops_cli.kustomize import YAML_SUFFIXES as YAML_SUFFIXES
from gitops_cli.kustomize import is_yaml_name as is_yaml_name
from gitops_cli.settings import FLAGS, Names

SKIP_DIRS = frozenset({".git"})
_SNIFF = 8192


def _is_binary(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return b"\0" in f.read(_SNIFF)
    except OSError:
        return True


def _is_yaml_file(path: Path) -> bool:
    return is_yaml_name(path.name) and stat.S_ISREG(path.lstat().st_mode) and not _is_binary(path)


def _walk(directory: Path) -> Iterator[Path]:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.is_symlink():
            continue
        if entry.is_dir(follow_symlinks=False):
            # another repository inside this one (an initialised submodule, a nested clone) is not its files
            if entry.name not in SKIP_DIRS and not os.path.lexists(os.path.join(entry.path, ".git")):
                yield from _walk(Path(entry.path))
        elif entry.is_file(follow_symlinks=False) and is_yaml_name(entry.name):
            path = Path(entry.path)
            if not _is_binary(path):
                yield path


def relative_subpath(root: Path, subpath: str, names: Names = FLAGS) -> Path:
    """A `paths` value (--path: relative to root, or absolute inside it) as a normalized path relative to
    root (`.` for root itself); UsageError (exit 2) for one outside root, naming it as `names` does (its
    source).  Nothing is read from disk: history checks the result against a git tree instead.  An empty
    value is refused too: normpath makes it `.`, the whole repository, which it never asks for (`--path
    "$DIR"` with DIR unset would bump every environment)."""
    if not subpath:
        raise UsageError(f"{names('paths', subpath)}: empty value; give a directory of the repository "
                         "(`.` for all of it)")
    relative = Path(os.path.normpath(subpath))
    if relative.is_absolute():
        try:
            relative = relative.relative_to(root.resolve())
        except ValueError:
            raise UsageError(f"{names('paths', subpath)}: outside the repository") from None
    if relative.parts and relative.parts[0] == "..":
        raise UsageError(f"{names('paths', subpath)}: outside the repository", hint="give a path inside it")
    return relative


def _inside(root: Path, subpath: str, names: Names) -> Path:
    """The path of subpath relative to root, refusing anything outside root or reached through a symlink."""
    relative = relative_subpath(root, subpath, names)
    current = root
    for part in relative.parts:
        current = current / part
        if current.is_symlink():
            raise UsageError(f"{names('paths', subpath)}: goes through a symlink; symlinks are never followed")
        if os.path.lexists(current / ".git"):  # as _walk: a nested repository is not this one's files
            raise UsageError(f"{names('paths', subpath)}: inside another repository ({current.relative_to(root)} "
                             "has its own .git)", hint="bump that repository on its own")
    if not current.exists():
        raise UsageError(f"{names('paths', subpath)}: does not exist in the repository")
    return relative


def check_subpaths(root: Path, subpaths: Sequence[str], names: Names = FLAGS) -> None:
    """UsageError (exit 2) for a subpath discover would refuse (outside root, missing, through a symlink,
    in a nested repository), without reading any file: a check before the work that needs them."""
    for subpath in subpaths:
        _inside(root, subpath, names)


def discover(root: Path, subpaths: list[str] | None = None, names: Names = FLAGS) -> Iterator[Path]:
    """YAML files below root (or below each of subpaths, relative to root), sorted, each once.

    Yields root / relative path.  Raises UsageError for a subpath outside root, missing, or through a
    symlink, naming it as `names` does (the flag, variable or config key that gave it).
    """
    root = Path(root)
    if not subpaths:
        yield from _walk(root)
        return
    found: set[Path] = set()
    for relative in {_inside(root, s, names) for s in subpaths}:
        start = root / relative
        if start.is_dir():
            found.update(_walk(start))
        elif _is_yaml_file(start):
            found.add(start)
    yield from sorted(found, key=lambda p: p.parts)


def read_text(path: Path) -> str:
    """The file as str, exactly: UTF-8 (a BOM stays as '\\ufeff'), no newline translation.

    Raises UnicodeDecodeError (a ValueError) for a file that is not UTF-8.
    """
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def _keep_owner(tmp: str, owner: tuple[int, int]) -> None:
    """chown the temp file to the replaced file's owner and group, where the system allows it (root; a user
    for a group of theirs): otherwise (EPERM) it stays the process's own."""
    try:
        os.chown(tmp, *owner)
    except PermissionError:
        with contextlib.suppress(PermissionError):
            os.chown(tmp, -1, owner[1])  # the group alone, when the user is in it


def write_atomic(path: Path, text: str, *, durable: bool = True) -> None:
    """Replace path with text atomically (temp file in the same directory + os.replace), keeping its mode,
    and its owner and group when the process may set them (root editing another user's checkout: a CI
    container on the runner's files; a chown the system refuses leaves the new file the process's own).

    durable=False skips the fsync: still atomic (never a half-written file), just not flushed to disk
    before the rename; for work-tree files, which git itself never fsyncs (one fsync per file dominated
    `gitops bump` on large repos).

    The temp file (`.NAME.XXXXXXXX.tmp`) never survives the call: from its creation to its rename an
    interrupt waits (interrupts.held: raised once the file is renamed or removed), and any error removes it.
    A write the system refuses -- disk full, read-only file system, an immutable file or directory
    (`chattr +i`), a directory gitops may not write, a file that is a mount point (a bind mount) -- is a
    GitopsError of exit 74 naming `path` (errors.refused_write).
    """
    path = Path(path)
    owner: tuple[int, int] | None = None
    try:
        st = path.stat()
        mode, owner = stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    tmp: str | None = None
    try:
        with interrupts.held():
            try:
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                    f.write(text)
                    f.flush()
                    if durable:
                        os.fsync(f.fileno())
                if owner is not None and owner != (os.geteuid(), os.getegid()):
                    _keep_owner(tmp, owner)  # before the chmod: a chown clears set-id bits
                os.chmod(tmp, mode)
                os.replace(tmp, path)
                tmp = None
            finally:
                if tmp is not None:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp)
    except OSError as exc:
        if exc.errno in REFUSED_WRITES:
            raise refused_write(exc, path) from None
        raise
