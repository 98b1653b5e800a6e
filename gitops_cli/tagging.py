"""The immutable tag for an app checkout: the short commit SHA, optionally marked dirty.

- `<prefix><sha>` where sha is `git rev-parse --short=N` (N=7 by default), which git lengthens by itself
  when N digits are ambiguous among the repository's objects.
- A dirty tree (uncommitted changes, untracked non-ignored files) is refused unless allow_dirty, which
  gives `<sha>-dirty-<8 hex>`: the hex hashes HEAD and the tree of the tracked files as they are (the tree
  a `git add -u` would commit: content, not a diff, so no diff setting changes it) plus the untracked
  files' names and contents, and the same inside submodules and untracked nested repositories
  (recursively), so two different dirty states never share a tag.
- Dirty as the engine will copy the files, not only as `git status` shows them: an executable bit that
  is not the index's also under core.fileMode=false, and a file marked assume-unchanged or skip-worktree
  (`git ls-files -v`) whose content or mode is not the index's (skip-worktree files a sparse checkout
  leaves out are no change to git).  Read-only: the flags are cleared on a copy of the index.
- A sparse checkout's left-out files that a build would send (`context`: inside its directory, kept by
  its .dockerignore) are refused, --allow-dirty or not (check_sparse): the image would lack them under
  the commit's tag.  Without a build context (`gitops tag`, publish) they are not looked at.
- check_unchanged: the source state tagged must still be the checkout's when the image is built (the
  tests and the build command run in between).
- `sha` overrides the commit (CI systems that check out a merge commit pass the PR head SHA); it must
  name a commit, and an unknown full SHA (40 hex digits, 64 in a SHA-256 repository) is trusted only in
  a shallow clone.
- In CI, the tag rule of gitops_cli.ci applies: a pull-request build that checked out the CI's merge
  commit is refused (its SHA names no commit anyone can find later) unless `sha` is given.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitops_cli import ci, git, output
from gitops_cli.errors import DirtyTreeError, GitopsError, UsageError
from gitops_cli.imageref import validate_tag

if TYPE_CHECKING:
    from gitops_cli.dockerignore import BuildContext

MAX_LISTED_PATHS = 10
# the build context a sparse checkout must not leave files out of, loaded only when one does (read on demand:
# reading .dockerignore is no work for the common checkout)
ContextLoader = Callable[[], "BuildContext"]
_HEX_RE = re.compile(r"[0-9a-f]{4,64}", re.ASCII)  # up to a full SHA-256 commit id


@dataclass(frozen=True)
class TagInfo:
    tag: str
    sha: str  # full commit id the tag names (40 hex digits, 64 in a SHA-256 repository)
    short: str
    dirty: bool
    repo: Path
    state: str = ""  # the dirty hash of the uncommitted state tagged, "" for a clean tree


# the executable bit as the engine copies it into the image, whatever core.fileMode says
_FILE_MODE = ("-c", "core.fileMode=true", "-c", "core.ignoreStat=false")
_STAT = ("-c", "core.ignoreStat=false")


@functools.cache
def _mode_options(repo: Path) -> tuple[str, ...]:
    """_FILE_MODE where the file system keeps executable bits; where it keeps none (vfat, WSL's /mnt/c
    without metadata: every file shows one, and git set core.fileMode=false when it made the
    repository), every file would differ from the index, so the bits are left to core.fileMode there.
    Told by git's own HEAD file, which git never makes executable."""
    import stat

    try:
        head = git.git_paths(repo, "HEAD")[0]
        keeps_modes = not os.stat(head).st_mode & stat.S_IXUSR
    except (OSError, GitopsError):
        keeps_modes = True
    return _FILE_MODE if keeps_modes else _STAT
# a copy of the index: nothing written next to the repository's own (a split index's shared file, fsmonitor's data)
_COPY = ("-c", "core.splitIndex=false", "-c", "core.fsmonitor=false")


def dirty_paths(repo: Path, entries: list[tuple[str, str, str]] | None = None) -> list[str]:
    """Paths with uncommitted changes or untracked, non-ignored files (porcelain order), as the engine
    will copy them: also a changed executable bit under core.fileMode=false, and a changed file marked
    assume-unchanged or skip-worktree (then a checked-out submodule with such a file is named).
    `entries`: the repository's _index_entries, when already read."""
    entries = _index_entries(repo) if entries is None else entries
    with _index_view(repo, entries) as env:
        out = _status(repo, [*_mode_options(repo), *(_COPY if env else ())], env)
    listed = set(out)  # a submodule git status found clean may hide a flagged file's change
    subs = [path for tag, mode, path in entries if mode == "160000" and path not in listed
            and (repo / path / ".git").exists()]
    if subs:  # only one with a flagged file inside may (one git call for all, not one a submodule)
        flagged = _flagged_inside(repo)
        out += [path for path in subs if path in flagged and _hides_changes(repo / path)]
    return out


def _flagged_inside(repo: Path) -> set[str]:
    """The directories of `repo` holding a flagged file (assume-unchanged, skip-worktree) of a checked-out
    submodule, at any depth, and the submodules `git ls-files --recurse-submodules` does not look into
    (not active): one `git ls-files` reads the index of every submodule, in its own process."""
    res = git.run(["ls-files", "-v", "--stage", "-z", "--recurse-submodules"], cwd=repo, strip=False)
    out: set[str] = set()
    for raw in res.raw.split(b"\0"):
        if raw[:1] == b"S" or raw[:1].islower() or raw[2:9] == b"160000 ":
            path = git.decode_path(raw.partition(b"\t")[2])
            while path:  # the submodule is one of its parent directories
                out.add(path)
                path = path.rpartition("/")[0]
    return out


def _status(repo: Path, config: list[str], env: dict[str, str]) -> list[str]:
    """The paths `git status` lists (porcelain order), under the `config` options and `env` given."""
    res = git.run([*config, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignore-submodules=none"],
                  cwd=repo, env=env, strip=False)
    out: list[str] = []
    entries = res.paths()
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        status, path = entry[:2], entry[3:]
        if status[0] in "RC":  # rename/copy: the source path follows as its own entry
            i += 1
        out.append(path)
    return out


def _index_entries(repo: Path) -> list[tuple[str, str, str]]:
    """(tag, mode, path) of the index entries that are flagged (`git ls-files -v`: S skip-worktree, a
    lowercase tag assume-unchanged) or submodules (mode 160000); the others are what `git status` sees."""
    res = git.run(["ls-files", "-v", "--stage", "-z"], cwd=repo, strip=False)
    out = []
    for raw in res.raw.split(b"\0"):
        if raw[:1] == b"S" or raw[:1].islower() or raw[2:9] == b"160000 ":
            info, _, path = raw.partition(b"\t")
            out.append((info[:1].decode(), info[2:8].decode(), git.decode_path(path)))
    return out


def _hides_changes(sub: Path) -> bool:
    """Whether the checked-out submodule `sub` has changes only dirty_paths sees (a flagged file's)."""
    entries = _index_entries(sub)
    return bool(entries) and bool(dirty_paths(sub, entries))  # the index read once


@contextmanager
def _index_view(repo: Path, entries: list[tuple[str, str, str]], copy: bool = False) -> Iterator[dict[str, str]]:
    """The environment under which git sees every flagged file of `entries` as it is: {} when none is
    flagged (and not `copy`), else a copy of the index (GIT_INDEX_FILE) without their assume-unchanged
    and skip-worktree flags, and a temporary object directory (the repository's own as its alternate):
    the repository's own index, flags and objects stay as they are.  A skip-worktree file missing in a
    sparse checkout (core.sparseCheckout) keeps its flag: not checked out is what it means there."""
    import shutil

    from gitops_cli.tempdirs import TempDir

    skip = [path for tag, _, path in entries if tag in "Ss"]
    assume = [path for tag, _, path in entries if tag.islower()]
    missing = {path for path in skip if not os.path.lexists(repo / path)}
    if missing and _sparse(repo):
        skip = [path for path in skip if path not in missing]
        assume = [path for path in assume if path not in missing]
    if not skip and not assume and not copy:
        yield {}
        return
    index, objects = git.git_paths(repo, "index", "objects")
    with TempDir("tag") as scratch:
        if index.is_file():  # its stat data spares hashing the files that did not change
            shutil.copyfile(index, scratch / "index")
        (scratch / "objects").mkdir()
        env = {"GIT_INDEX_FILE": str(scratch / "index"), "GIT_OBJECT_DIRECTORY": str(scratch / "objects"),
               "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(objects.resolve())}
        # one call a flag (git applies one of the two a call), the paths on stdin: each call rewrites the copy
        for flag, paths in (("--no-skip-worktree", skip), ("--no-assume-unchanged", assume)):
            if paths:
                git.run([*_COPY, "update-index", flag, "-z", "--stdin"], cwd=repo, env=env,
                        stdin=b"".join(os.fsencode(path) + b"\0" for path in paths),
                        what="git update-index (a copy of the index)")
        yield env


def left_out(repo: Path, load: ContextLoader, entries: list[tuple[str, str, str]] | None = None) -> list[str]:
    """The files of the commit a sparse checkout of `repo` leaves out (skip-worktree, not on disk, under
    core.sparseCheckout) that a build of the context `load` gives would send if they were there: inside its
    directory, kept by its .dockerignore.  Paths from the top of `repo`, in the index's order."""
    from gitops_cli.dockerignore import decode

    missing = sparse_left_out(repo, entries)
    if not missing:
        return []
    context = load()
    top, ctx = os.path.realpath(repo), os.path.realpath(context.root)
    out = []
    for path in missing:
        rel = os.path.relpath(os.path.join(top, path), ctx)
        if rel != ".." and not rel.startswith("../") and context.walk_keeps(decode(os.fsencode(rel))):
            out.append(path)
    return out


def sparse_left_out(repo: Path, entries: list[tuple[str, str, str]] | None = None) -> list[str]:
    """The tracked files a sparse checkout of `repo` leaves out: skip-worktree, not on disk, under
    core.sparseCheckout (asked only when such a file exists).  Paths from the top, in the index's order.
    `entries`: the repository's _index_entries, when already read."""
    entries = _index_entries(repo) if entries is None else entries
    missing = [path for tag, _, path in entries if tag in "Ss" and not os.path.lexists(repo / path)]
    return missing if missing and _sparse(repo) else []


def check_sparse(repo: Path, load: ContextLoader, entries: list[tuple[str, str, str]] | None = None) -> None:
    """DirtyTreeError (exit 4) naming the files a sparse checkout of `repo` leaves out that the build of the
    context `load` gives would send (left_out): the image would lack them, yet be tagged and labelled as the commit,
    and a full checkout of that commit would then find it "already published".  --allow-dirty or not:
    no tag names a tree without them."""
    paths = left_out(repo, load, entries)
    if paths:
        raise DirtyTreeError(
            f"{repo}: the sparse checkout leaves out files the build context would send: {listed_paths(paths)}; "
            "the image would lack them under the commit's tag",
            hint="check out every file (git sparse-checkout disable), or add them to the sparse checkout "
                 "(git sparse-checkout add DIR), or leave them out of the build with .dockerignore")


def _sparse(repo: Path) -> bool:
    res = git.run(["config", "--bool", "core.sparseCheckout"], cwd=repo, check=False)
    return res.stdout.strip() == "true"


def dirty_hash(repo: Path) -> str:
    """8 hex digits identifying the exact uncommitted state: HEAD and the tree of the tracked files as they
    are on disk (work_tree), the untracked files' names, executable bits and contents, and the same,
    recursively, inside every checked-out submodule and every untracked nested repository (whose own
    changes the tree records only as its HEAD commit, or not at all)."""
    h = hashlib.sha256()
    _hash_state(h, repo, "")
    return h.hexdigest()[:8]


def _hash_state(h: Any, repo: Path, prefix: str) -> None:
    """Feed `repo`'s uncommitted state into `h`; paths are named from the top repository (`prefix`)."""
    h.update(b"\0repo\0" + os.fsencode(prefix) + b"\0")
    head = git.run(["rev-parse", "--verify", "--quiet", "HEAD"], cwd=repo, check=False)
    h.update(b"head:" + head.stdout.strip().encode() + b"\0")
    h.update(b"tree:" + work_tree(repo).encode() + b"\0")
    untracked = git.run(["ls-files", "--others", "--exclude-standard", "-z"], cwd=repo, strip=False)
    for name in sorted(untracked.paths(), key=_order):
        h.update(b"\0untracked\0" + os.fsencode(name) + b"\0")
        f = repo / name
        if f.is_symlink():
            h.update(b"link:" + os.fsencode(f.readlink()))
        elif f.is_dir():  # git lists a nested repository as `dir/`, not its files
            _hash_state(h, f, prefix + name)
        elif f.is_file():  # its executable bit too, which git records (a COPY keeps it)
            h.update(b"755:" if f.stat().st_mode & 0o100 else b"644:")
            _hash_file(h, f)
    staged = git.run(["ls-files", "--stage", "-z"], cwd=repo, strip=False)
    for entry in sorted((e for e in staged.paths() if e.startswith("160000 ")), key=_order):
        path = entry.split("\t", 1)[1]
        sub = repo / path
        if (sub / ".git").exists():  # a checked-out submodule: its own changes
            _hash_state(h, sub, f"{prefix}{path}/")


_CHUNK = 1 << 20  # what _hash_file reads at a time


def _hash_file(h: Any, path: Path) -> None:
    """Feed the content of the file `path` into `h`, _CHUNK bytes at a time: an untracked file of
    gigabytes (a dataset, a core dump) costs one chunk of memory, not its size."""
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            h.update(chunk)


def _order(path: str) -> str:
    """The sort key of a path from git: its bytes read as UTF-8, whatever the locale's encoding (the file
    system's, by which git.decode_path reads it), so that the hash is the same under any locale."""
    return os.fsencode(path).decode("utf-8", "surrogateescape")


def work_tree(repo: Path) -> str:
    """The id of the tree git would commit from the tracked files as they are on disk (`git add -u`, then
    `git write-tree`): the same content, the same id, whatever the user's diff settings (diff.noprefix,
    diff.algorithm, diff.context, a diff driver's funcname... changed the diff this was once a hash of).
    As dirty_paths sees the files: their executable bits whatever core.fileMode says, and flagged files
    (assume-unchanged, skip-worktree) as they are.  Done on a copy of the index, and writing its objects
    to a temporary object directory: nothing of the repository changes."""
    with _index_view(repo, _index_entries(repo), copy=True) as env:
        git.run([*_mode_options(repo), *_COPY, "add", "--update"], cwd=repo, env=env,
                what="git add -u (a copy of the index)")
        return git.run([*_COPY, "write-tree"], cwd=repo, env=env, what="git write-tree").stdout.strip()


def resolve_sha(repo: Path, override: str | None) -> str:
    if override is None:
        res = git.run(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], cwd=repo, check=False)
        if res.status != 0:
            raise DirtyTreeError(f"{repo}: the repository has no commit yet", hint="commit first")
        return res.stdout.strip()
    sha = override.strip().lower()
    if not _HEX_RE.fullmatch(sha):
        raise UsageError(f"--sha {override!r}: expected a hexadecimal commit id (4 to 40 digits; 64 in a "
                         "SHA-256 repository)")
    res = git.run(["rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}"], cwd=repo, check=False)
    if res.status == 0:
        return res.stdout.strip()
    kind = git.run(["cat-file", "-t", sha], cwd=repo, check=False)
    if kind.status == 0:  # the object exists but is no commit (a blob, a tree)
        raise UsageError(f"--sha {override!r}: names a {kind.stdout.strip()}, not a commit, in {repo}")
    full = git.id_length(repo)
    if len(sha) > full:
        raise UsageError(f"--sha {override!r}: {len(sha)} digits, a commit id of {repo} has {full}")
    if len(sha) == full and git.is_shallow(repo):  # not in this shallow clone: trust the CI's full SHA
        return sha
    hint = f"pass the full {full}-digit SHA" if len(sha) < full else "fetch the commit (git fetch origin SHA)"
    raise UsageError(f"--sha {override!r}: no such commit in {repo}", hint=hint)


def short_sha(repo: Path, sha: str, length: int) -> str:
    res = git.run(["rev-parse", f"--short={length}", sha], cwd=repo, check=False)
    if res.status == 0 and res.stdout.strip():
        return res.stdout.strip()
    return sha[:length]


def check_ci_checkout(root: Path, head: str, info: ci.CIInfo) -> None:
    """Apply the CI tag rule to the checked-out commit; warn when the CI names another commit."""
    ci.check_checkout(head, info)
    if info.provider == "jenkins" and info.pull_request:  # a merge made on the agent: only git can tell
        parents = len(git.run(["rev-list", "--parents", "-n", "1", head], cwd=root).stdout.split()) - 1
        on_remote = parents > 1 and bool(git.run(
            ["for-each-ref", "--count=1", "--contains", head, "--format=%(refname)", "refs/remotes"],
            cwd=root).stdout.strip())
        ci.check_pr_merge_head(head, parents, info, on_remote=on_remote)
    if info.source_commit and info.source_commit != head and not info.pull_request:
        output.warn(f"{info.provider} names commit {info.source_commit[:12]}, the checkout is "
                    f"{head[:12]}: tagging the checkout (what is built)")
    elif info.source_commit and info.source_commit != head and head == info.base_commit:
        branch = f"the head of {info.base_branch}" if info.base_branch else "its branch's head"
        output.warn(f"this pull_request_target build checked out {branch}, {head[:12]} (GITHUB_SHA), not the pull "
                    f"request's head {info.source_commit[:12]}: tagging the checkout (what is built)")


def check_clean(root: Path, allow_dirty: bool, what: str = "a tag",
                entries: list[tuple[str, str, str]] | None = None) -> list[str]:
    """The dirty paths of the work tree `root`; DirtyTreeError (exit 4) listing them unless allow_dirty.
    `entries`: the repository's _index_entries, when already read."""
    paths = dirty_paths(root, entries)
    if paths and not allow_dirty:
        raise DirtyTreeError(
            f"{root}: working tree has uncommitted changes or untracked files; {what} must name one "
            f"source state: {listed_paths(paths)}",
            hint="commit or stash them (or add them to .gitignore); --allow-dirty for a local run"
                 + _unseen(root, paths),
        )
    return paths


def source_state(root: Path, paths: list[str] | None = None) -> str:
    """"" for a clean work tree `root`, else its dirty hash (`paths`: its dirty paths, when known)."""
    return dirty_hash(root) if (dirty_paths(root) if paths is None else paths) else ""


def check_unchanged(repo: Path, state: str, cause: str, tagged: str) -> None:
    """DirtyTreeError (exit 4) when the checkout of `repo` is no longer in the source state `state`
    (source_state) it had when it was tagged `tagged`: `cause` (the test command, the build command) ran
    since and changed it, and the image built now would not be what its tag and labels name."""
    root = git.toplevel(repo)
    paths = dirty_paths(root)
    if not state and paths:
        raise DirtyTreeError(
            f"{root}: {cause} changed the working tree after it was tagged {tagged}: {listed_paths(paths)}; "
            "the image would not be the commit its tag and revision label name",
            hint="make it leave the tracked files as they are and write only ignored files (.gitignore); "
                 "the image was not built" + _unseen(root, paths),
        )
    if state and (dirty_hash(root) if paths else "") != state:
        now = f"now {listed_paths(paths)}" if paths else "now clean"
        raise DirtyTreeError(
            f"{root}: {cause} changed the uncommitted state tagged {tagged} ({now}): the image would not "
            "be the source state its tag names",
            hint="make it leave the checkout as it found it (it may write ignored files); the image was "
                 "not built",
        )


def _unseen(root: Path, paths: list[str]) -> str:
    """What to add to a dirty tree's hint when `git status` does not show some of `paths`: the flagged
    files among them, and core.fileMode=false (the executable bits it hides)."""
    listed = set(paths)
    entries = _index_entries(root)
    flagged = [path for tag, _, path in entries if path in listed and (tag in "Ss" or tag.islower())]
    note = ""
    if flagged:
        note += (f"; {listed_paths(flagged)}: marked assume-unchanged or skip-worktree (`git ls-files -v`), "
                 "so `git status` does not show the change, but the image gets it")
    unseen = listed - set(flagged) - set(_status(root, [], {}))  # git status as the user runs it
    inside = sorted(path for _, mode, path in entries if mode == "160000" and path in unseen)
    if inside:  # a submodule dirty_paths names for a flagged file of its own (_hides_changes)
        note += (f"; {listed_paths(inside)}: a file inside is marked assume-unchanged or skip-worktree "
                 "(`git -C SUBMODULE ls-files -v`), so `git status` does not show its change, but the image gets it")
        unseen -= set(inside)
    if unseen:
        note += (f"; {listed_paths(sorted(unseen))}: executable bit changed, which `git status` does not show "
                 "under core.fileMode=false, but the image gets it (`git -c core.fileMode=true status` shows it)")
    return note


def listed_paths(paths: list[str]) -> str:
    """Up to MAX_LISTED_PATHS of `paths` for a one-line message, comma-separated, then `and N more`; a
    name is quoted as git quotes it when it holds a control character, `"` or `\\`, and also when a comma
    or a blank at either end would blur where it ends (`"a, b"`)."""
    shown = [output.quoted_path(p, always="," in p or p != p.strip()) for p in paths[:MAX_LISTED_PATHS]]
    more = len(paths) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def derive_tag(
    repo: str | Path = ".",
    length: int = 7,
    prefix: str = "",
    allow_dirty: bool = False,
    sha: str | None = None,
    environ: Mapping[str, str] | None = None,
    context: ContextLoader | None = None,
) -> TagInfo:
    """The tag of the checkout holding `repo` (see the module docstring); `context`: loads the build context
    the image is built from, whose files a sparse checkout must not leave out (check_sparse; loaded only
    when it leaves some out)."""
    if not 7 <= length <= 40:
        raise UsageError(f"--length {length}: must be between 7 and 40")
    root = git.toplevel(repo)
    full = resolve_sha(root, sha)
    if sha is None:
        check_ci_checkout(root, full, ci.detect(environ))
    short = short_sha(root, full, length)
    entries = _index_entries(root)  # read once for both checks
    paths = check_clean(root, allow_dirty, entries=entries)
    if context is not None:
        check_sparse(root, context, entries)
    state = source_state(root, paths)
    tag = f"{prefix}{short}" + (f"-dirty-{state}" if state else "")
    validate_tag(tag)
    return TagInfo(tag=tag, sha=full, short=short, dirty=bool(paths), repo=root, state=state)
