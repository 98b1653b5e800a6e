"""The history of an image in a deploy repo: each change of its tag/digest, newest first.

    read_history(HistoryRequest(...)) -> HistoryResult

Each entry comes from the diff of one commit on the branch's first-parent line: the values of the
image's references (located by the shared YAML locator) in the changed YAML files, before and after, renamed
files followed (`-M`; entries name files at their paths at the branch's tip).  A merge whose value came from
the merged side (a `git pull` merge, a merged review branch) stands for that side's own commits: their entries
replace it (see _entries_for).
A commit made by `gitops bump`/`rollback` also carries `Image:`, `Source-Commit:` and `Rollback-Of:`
trailers, which are reported; commits made by hand are read from their diffs alone.

A remote deploy repo is cloned blobless and shallow (depth 32); when that history holds fewer entries
than asked for, it is deepened on demand (doubling), so a large repo is never cloned whole up front.
`history_in_clone` reads an existing shallow clone the same way (rollback reads the clone it bumps).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from gitops_cli import deployrepo, git, output
from gitops_cli.errors import GitopsError, NotFoundError, UsageError
from gitops_cli.imageref import ImageRef, try_parse
from gitops_cli.kustomize import YAML_ENDINGS, is_yaml_name
from gitops_cli.settings import FLAGS, Names
from gitops_cli.tempdirs import TempDir
from gitops_cli.yamledit.discover import relative_subpath

INITIAL_DEPTH = 32
MAX_DEPTH = 1 << 20
_YAML_PATHSPEC = tuple(f"*{ending}" for ending in YAML_ENDINGS)  # a superset: is_yaml_name decides
_AHEAD_MIN, _AHEAD_MAX = 16, 1024  # commits whose changes history reads in one go (see _walk)
_TRAILER_KEYS = ("Image", "Source-Commit", "Rollback-Of", "CI-Run")


@dataclass(frozen=True)
class HistoryRequest:
    deploy_repo: str
    image: ImageRef | None = None  # None: every image
    branch: str | None = None
    paths: Sequence[str] = ()
    limit: int = 20
    ssh_key: Path | None = None
    names: Names = FLAGS  # how messages name a setting's value (its source)
    container: str | None = None  # only this container's references (and kustomize/Helm entries), as bump's


@dataclass
class HistoryEntry:
    repository: str  # normalized repository name
    name: str  # the name as written in the files
    tag: str | None
    digest: str | None
    previous: str | None  # the values before this commit, as `value` shows them; None when newly added
    commit: str
    date: str  # committer date, ISO 8601
    author: str
    subject: str
    files: list[str] = field(default_factory=list)  # the changed files, at their paths at the branch's tip
    commit_files: list[str] = field(default_factory=list)  # the same, at their paths in the commit
    source_commit: str | None = None
    rollback_of: str | None = None
    by_gitops: bool = False  # the commit carries an `Image:` trailer
    # each value the commit set the image to: one, or several when its references got different tags (two
    # containers of one repository at two tags) and no `Image:` trailer names one: tag and digest are then
    # None, as which value is the image's is not guessed
    values: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.values:
            self.values = [value_text(self.tag, self.digest)]

    @property
    def value(self) -> str:
        """The values as people read them (see shown): `v2`, `-@sha256:...`, `-` (no tag), `v1, v1-debug`."""
        return shown(self.values)

    @property
    def several(self) -> bool:
        """The commit set the image to several values (see `values`)."""
        return len(self.values) > 1

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["value"] = self.value
        return data


@dataclass
class HistoryResult:
    repository: str  # the deploy repo as it may be printed
    branch: str | None
    entries: list[HistoryEntry]
    complete: bool  # True when the whole history was read (no more entries exist)
    # the commit a shallow local checkout's history stops at (its first commit here: git fetch --unshallow
    # for the rest); None when nothing was cut off
    shallow_at: str | None = None


def _value_of(ref: Any) -> tuple[str, ImageRef] | None:
    """(name as written, parsed reference) of a located reference, when it parses."""
    written = ref.value
    parsed = try_parse(written) if written else None
    if parsed is None:
        return None
    return parsed.name, parsed


def _values(text: str | None, image: ImageRef | None, filename: str | None = None,
            where: str | None = None, container: str | None = None) -> dict[str, tuple[str, set[str]]]:
    """normalized repository -> (name as written, {value}) for the references in one file's text.

    A file that is not UTF-8 text or not valid YAML holds no values: it is skipped with a warning naming
    `where` (commit:file), as bump skips it.  `filename` recognises kustomization files by name.
    `container`: the references of other containers are left out, as bump --container leaves them."""
    from gitops_cli.bump import excluded_by_container, reference_matches
    from gitops_cli.yamledit import locate

    out: dict[str, tuple[str, set[str]]] = {}
    if not text:
        return out
    needles = None if image is None else [image.path.rsplit("/", 1)[-1]]
    try:  # git's output keeps bytes that are not UTF-8 as surrogates: decode strictly
        text = text.encode("utf-8", "surrogateescape").decode("utf-8")
    except UnicodeError as exc:
        if needles is None or any(n in text for n in needles):
            _skip(where or filename, f"not UTF-8 text: byte {exc.start}" if isinstance(exc, UnicodeDecodeError)
                  else "not UTF-8 text")
        return out
    located = locate(text, needles, filename=filename)
    if located.error is not None:
        _skip(where or filename, f"line {located.error.line}: {located.error.message}")
        return out
    for ref in located.references:
        got = _value_of(ref)
        if got is None:
            continue
        name, parsed = got
        if (image is not None and not reference_matches(ref, image)) or excluded_by_container(ref, container):
            continue
        value = value_text(parsed.tag, parsed.digest)
        entry = out.setdefault(parsed.normalized_name, (name, set()))
        entry[1].add(value)
    return out


_warned: set[str] = set()


def _skip(where: str | None, why: str) -> None:
    """One warning per commit:file that cannot be read (a file is read as the `before` of one commit and
    the `after` of another)."""
    key = f"{where}: {why}"
    if key not in _warned:
        _warned.add(key)
        output.warn(f"{where}: skipped ({why})")


def value_text(tag: str | None, digest: str | None) -> str:
    """`tag`, `tag@digest` or `@digest`: an image's value as history reports it (see split_value)."""
    return (tag or "") + (f"@{digest}" if digest else "")


def shown(values: Iterable[str]) -> str:
    """Values as history shows them to people (`value`, `previous`), sorted: a value with no tag has `-` for
    it, as the text output writes it: `-@sha256:...` for a digest-only pin, `-` for a reference with neither
    tag nor digest (`image: team/app`)."""
    pairs = map(split_value, sorted(values))
    return ", ".join((tag or "-") + (f"@{digest}" if digest else "") for tag, digest in pairs)


def split_value(value: str) -> tuple[str | None, str | None]:
    tag, _, digest = value.partition("@")
    return (tag or None), (digest or None)


def _pathspec(paths: Sequence[str]) -> list[str]:
    """--path values as git pathspecs matching exactly those paths (a directory or a file): `:(literal)`,
    so `[`, `*` and `?` in a name are no wildcards.  Without --path: every YAML file."""
    return [f":(literal){p}" for p in paths] if paths else list(_YAML_PATHSPEC)


_REGULAR = ("100644", "100755")  # a file's modes (a symlink, 120000, or a submodule, 160000, is never read)


@dataclass(frozen=True)
class _Change:
    """One YAML file's change between two commits (`git diff-tree --raw -M`): its path and blob on each side
    (None: absent there, or no regular YAML file).  A rename has both paths."""
    old: str | None
    new: str | None
    old_blob: str | None
    new_blob: str | None


def _raw_changes(fields: Sequence[bytes], at: int) -> tuple[list[_Change], int]:
    """The YAML files changed in `git diff-tree -r -z --raw` output split at NULs, from fields[at] to the end
    or to the next commit's id (`--stdin`), and where that is."""
    changes: list[_Change] = []
    while at < len(fields) and fields[at].startswith(b":"):
        old_mode, new_mode, old_blob, new_blob, status = fields[at][1:].decode().split()
        paths = [git.decode_path(f) for f in fields[at + 1:at + (3 if status[0] in "RC" else 2)]]
        at += 1 + len(paths)
        before: str | None = None if status[0] == "C" else paths[0]  # a copy: the original stays
        after = paths[-1]
        keep_old = before is not None and old_mode in _REGULAR and is_yaml_name(before)
        keep_new = new_mode in _REGULAR and is_yaml_name(after)
        if keep_old or keep_new:
            changes.append(_Change(before if keep_old else None, after if keep_new else None,
                                   old_blob if keep_old else None, new_blob if keep_new else None))
    return changes, at


Meta = tuple[str, str, str, dict[str, list[str]]]  # a commit's date, author, subject and trailers


def _trailers(text: str) -> dict[str, list[str]]:
    """The trailers history reports (_TRAILER_KEYS), from `%(trailers:only,unfold)`."""
    parsed: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in _TRAILER_KEYS:
            parsed.setdefault(key.strip(), []).append(value.strip())
    return parsed


class _Shallow(Exception):
    """A commit whose parents the clone lacks: more history must be fetched before it is read."""


Values = dict[str, tuple[str, set[str]]]  # normalized repository -> (name as written, {value}): see _values


class _Repo:
    """A checkout (or blobless clone) to read history from, deepened on demand.  File contents are read in
    batches (`cat-file --batch`; in a blobless clone the missing ones are fetched first, in one request) and
    their values kept by blob, so a commit changing a thousand files costs a few git commands, not two each."""

    def __init__(self, path: Path, env: Mapping[str, str], remote: deployrepo.Remote | None, branch: str,
                 rev: str = "HEAD", depth: int = INITIAL_DEPTH) -> None:
        self.path = path
        self.rev = rev
        self.env = dict(env)
        self.remote = remote
        self.branch = branch
        self.depth = depth
        self.complete: set[str] = set()  # commits whose YAML blobs (under --path) are all here
        self.present: set[str] = set()  # blobs known to be here
        self._values: dict[tuple[str, str], Values] = {}  # (blob, file name) -> its values
        self._trees: dict[str, dict[str, str]] = {}  # commit -> {YAML file (under --path): blob}
        self._diffs: dict[tuple[str | None, str], list[_Change]] = {}  # read ahead by diffs, for diff
        self._partial: bool | None = None  # see fetches
        self._window: list[str] = []  # the commits diffs read last
        self._meta: dict[str, Meta] = {}  # commit -> see meta
        self.cut_at: str | None = None  # the shallow boundary the walk stopped at, with no way to deepen

    def git(self, *args: str, check: bool = True, stdin: bytes | None = None) -> git.GitResult:
        return git.run(list(args), cwd=self.path, env=self.env, check=check, strip=False, stdin=stdin)

    def fetches(self) -> bool:
        """Whether file contents may have to be fetched: a clone gitops made blobless (a server that does not
        filter gives a full clone, where listing the missing objects would only cost time)."""
        if self._partial is None:
            self._partial = self.remote is not None and _promisor_remote(self.path) is not None
        return self._partial

    def can_deepen(self) -> bool:
        return self.remote is not None and self.depth < MAX_DEPTH and git.is_shallow(self.path)

    def deepen(self) -> bool:
        """Fetch more history; False when there is no more (or nothing to fetch from)."""
        if not self.can_deepen():
            return False
        self.depth = max(INITIAL_DEPTH, self.depth * 2)
        self.git("fetch", "--quiet", "--no-tags", "--no-auto-maintenance", f"--depth={self.depth}", "origin",
                 f"refs/heads/{self.branch}")
        return True

    def commits(self) -> list[tuple[str, list[str]]]:
        """The branch's first-parent line, newest first: (commit, its parents)."""
        listing = self.git("rev-list", "--first-parent", "--parents", self.rev, "--").stdout
        return [(line.split()[0], line.split()[1:]) for line in listing.splitlines() if line]

    def side(self, tip: str, *bases: str) -> list[tuple[str, list[str]]]:
        """The first-parent line of `tip` down to where it joins the history of `bases` (the commits a merge
        of `tip` into the first base brought; the others: the lines an enclosing side joins, whose commits
        are read there), newest first: (commit, its parents).  It ends at a commit whose first parent a base
        has, at a root, or at the shallow boundary."""
        listing = self.git("rev-list", "--parents", tip, "--not", *bases, "--").stdout
        parents = {line.split()[0]: line.split()[1:] for line in listing.splitlines() if line}
        line: list[tuple[str, list[str]]] = []
        commit: str | None = tip
        while commit is not None and commit in parents:
            line.append((commit, parents[commit]))
            commit = parents[commit][0] if parents[commit] else None
        return line

    def shallow_boundary(self) -> set[str]:
        """The commits whose parents were not fetched (those listed in .git/shallow)."""
        [shallow] = git.git_paths(self.path, "shallow")
        return set(shallow.read_text().split()) if shallow.is_file() else set()

    def diff(self, old: str | None, new: str, request: HistoryRequest) -> list[_Change]:
        """The YAML files (within --path) changed from commit `old` (None: nothing) to `new`, renames
        found (`-M`), their values read (see values).  Read before by `diffs` when it was asked for."""
        if (old, new) in self._diffs:
            return self._diffs.pop((old, new))
        spec = ["--", *_pathspec(request.paths)]
        revs = ["--root", new] if old is None else [old, new]
        raw = self.git("diff-tree", "-r", "-z", "--raw", "--no-abbrev", "--no-commit-id", "-M", *revs, *spec).raw
        changes = _raw_changes(raw.split(b"\0"), 0)[0]
        self._read_changes([(old, new, changes)], request)
        return changes

    def diffs(self, pairs: Sequence[tuple[str | None, str]], request: HistoryRequest) -> None:
        """Read the changes of these (first parent or None, commit) pairs ahead, for `diff` to return: one
        `git diff-tree --stdin` for all of them and one batch of their files' contents, not two git commands
        (three in a blobless clone) a commit, which made a long history slow to read."""
        todo = [(old, new) for old, new in pairs if (old, new) not in self._diffs]
        if len(todo) < 2:
            return  # diff reads one alone
        stdin = "".join(f"{new} {old}\n" if old else f"{new}\n" for old, new in todo).encode()
        raw = self.git("diff-tree", "--stdin", "-r", "-z", "--raw", "--no-abbrev", "-M", "--root", "--always",
                       "--", *_pathspec(request.paths), stdin=stdin).raw
        fields = raw.split(b"\0")
        found: dict[str, list[_Change]] = {}
        at = 0
        while at < len(fields) and fields[at]:  # each commit: its id (--always: also with no change), its changes
            commit = fields[at].decode()
            found[commit], at = _raw_changes(fields, at + 1)
        read = [(old, new, found[new]) for old, new in todo]
        self._window = [new for _, new in todo]
        self._meta = {c: m for c, m in self._meta.items() if c in found}  # the entries of earlier ones are made
        self._read_changes(read, request)
        self._diffs.update({(old, new): changes for old, new, changes in read})

    def _read_changes(self, diffs: Sequence[tuple[str | None, str, list[_Change]]], request: HistoryRequest) -> None:
        """Read the values of the files these (old, new, changes) diffs changed, in one batch."""
        files = [(c.old_blob, c.old, _where(old, c.old)) for old, _, changes in diffs for c in changes
                 if c.old_blob and c.old]
        files += [(c.new_blob, c.new, _where(new, c.new)) for _, new, changes in diffs for c in changes
                  if c.new_blob and c.new]
        self.read(files, request)

    def tree(self, commit: str, request: HistoryRequest) -> dict[str, str]:
        """{YAML file of commit's tree (within --path): blob}, their values read."""
        if commit not in self._trees:
            literal = [f":(literal){p}" for p in request.paths]  # ls-tree takes no wildcards: suffixes below
            listing = self.git("ls-tree", "-r", "-z", "--full-tree", commit, "--", *literal)
            files: dict[str, str] = {}
            for entry in listing.paths():
                meta, _, path = entry.partition("\t")
                mode, kind, blob = meta.split()
                if kind == "blob" and mode in _REGULAR and is_yaml_name(path):
                    files[path] = blob
            if self.fetches() and commit not in self.complete:  # one request for the tree's blobs
                deployrepo.fetch_missing_blobs(self.path, YAML_ENDINGS, self.env, commit=commit, paths=request.paths)
                self.complete.add(commit)
                self.present.update(files.values())
            self.read([(blob, path, _where(commit, path)) for path, blob in files.items()], request)
            self._trees[commit] = files
        return self._trees[commit]

    def read(self, files: Sequence[tuple[str, str, str]], request: HistoryRequest) -> None:
        """Read the values of these (blob, path, commit:path) files not read yet, in one `cat-file --batch`; in
        a blobless clone those not fetched yet are fetched first, in one request (git would fetch each one
        alone)."""
        todo = {(blob, posixpath.basename(path)): (path, where) for blob, path, where in files
                if (blob, posixpath.basename(path)) not in self._values}
        if not todo:
            return
        blobs = sorted({blob for blob, _ in todo})
        if self.fetches():  # a blobless clone holds few blobs besides those fetched here (listing which ones
            wanted = [b for b in blobs if b not in self.present]  # it lacks costs more than asking for a few again)
            if wanted:
                deployrepo.fetch_blobs(self.path, wanted, self.env)
            self.present.update(blobs)
        out = self.git("cat-file", "--batch", stdin="".join(f"{b}\n" for b in blobs).encode()).raw
        texts: dict[str, str] = {}
        at = 0
        while at < len(out):
            header_end = out.index(b"\n", at)
            blob, kind, *size = out[at:header_end].decode().split()
            at = header_end + 1
            if kind == "missing" or not size:
                continue
            end = at + int(size[0])
            texts[blob] = out[at:end].decode("utf-8", "surrogateescape")  # as git.run decodes `git show`
            at = end + 1
        for (blob, name), (path, where) in todo.items():
            self._values[(blob, name)] = _values(texts.get(blob), request.image, path, where, request.container)

    def values(self, blob: str | None, path: str | None) -> Values:
        """The values of a file read before (diff, tree): {} for no file."""
        if blob is None or path is None:
            return {}
        return self._values.get((blob, posixpath.basename(path)), {})

    def check_paths(self, paths: Sequence[str], names: Names) -> list[str]:
        """--path values as paths of this revision's tree ('/'-separated, normalized); UsageError (exit 2)
        for one outside the repository, missing from the branch, a symlink (never followed), or one that is,
        or lies in, a submodule, as bump refuses them, naming it as `names` does.  A path naming the whole
        tree ('.') means no restriction."""
        from gitops_cli.bump import refuse_submodule_path

        checked: list[str] = []
        for raw in paths:
            rel = relative_subpath(self.path, raw, names).as_posix()  # bump's rule: inside the repository
            if rel == ".":
                return []
            refuse_submodule_path(self.path, rel, names("paths", raw), rev=self.rev,
                                  hint="read that repository's history on its own")
            folder, name = posixpath.split(rel)
            listing = self.git("ls-tree", "-z", f"{self.rev}:{folder}", check=False)
            modes = {line.partition("\t")[2]: line.split(" ", 1)[0]
                     for line in listing.paths()} if listing.status == 0 else {}
            if name not in modes:
                raise UsageError(f"{names('paths', raw)}: does not exist in the repository ({self.branch})")
            if modes[name] == "120000":
                raise UsageError(f"{names('paths', raw)}: a symlink; symlinks are never followed")
            if rel not in checked:
                checked.append(rel)
        return checked

    def meta(self, commit: str) -> Meta:
        """The commit's date, author, subject and trailers; read with those of the commits `diffs` read last (the
        ones whose entries come next), in one `git log`, not one `git show` an entry."""
        if commit not in self._meta:
            wanted = [commit, *(c for c in self._window if c not in self._meta and c != commit)]
            fmt = "%H%x00%cI%x00%an <%ae>%x00%s%x00%(trailers:only,unfold)"
            fields = self.git("log", "-z", "--no-walk=unsorted", "--stdin", f"--format={fmt}",
                              stdin="".join(f"{c}\n" for c in wanted).encode()).stdout.split("\0")
            for at in range(0, len(fields) - 4, 5):  # five fields a commit, commits separated by NUL too (-z)
                found, date, author, subject, trailers = fields[at:at + 5]
                self._meta[found] = (date, author, subject, _trailers(trailers))
        return self._meta[commit]


@dataclass
class _Slot:
    """How one commit changed one repository's references: its files' values before and after."""
    name: str  # as written
    new: set[str] = field(default_factory=set)  # values set
    old: set[str] = field(default_factory=set)  # values replaced or removed
    before: set[str] = field(default_factory=set)
    after: set[str] = field(default_factory=set)
    pairs: list[tuple[str | None, str | None]] = field(default_factory=list)  # (path before, path after)


def _slots(repo: _Repo, changes: Sequence[_Change]) -> dict[str, _Slot]:
    """repository -> _Slot, for the repositories whose values in the changed files differ."""
    slots: dict[str, _Slot] = {}
    for change in changes:
        before = repo.values(change.old_blob, change.old)
        after = repo.values(change.new_blob, change.new)
        for repository in sorted(before.keys() | after.keys()):
            name, values = after.get(repository) or (before[repository][0], set())
            old = before.get(repository, (name, set()))[1]
            if values == old:
                continue
            slot = slots.setdefault(repository, _Slot(name))
            slot.new |= values - old or values
            slot.old |= old - values
            slot.before |= old
            slot.after |= values
            slot.pairs.append((change.old, change.new))
    return slots


def _tree_changes(repo: _Repo, parent: str, commit: str, slots: dict[str, _Slot],
                  request: HistoryRequest) -> None:
    """Drop the slots that change no value of the tree (within --path): references added at values the tree
    already had (a new overlay at the current tag), references removed at values it still has.  A removal that
    leaves values the tree had besides sets the image to those values (preview at v3 removed, prod at v2: v2,
    from v3); one that leaves the image no reference at all is no entry (no value to list)."""
    for repository, slot in list(slots.items()):
        if slot.before <= slot.after:  # only added
            kept = {old for old, _ in slot.pairs if old}
            if slot.after <= _tree_values(repo, parent, repository, kept, request):
                del slots[repository]
        elif not slot.after:  # only removed
            left = _tree_values(repo, commit, repository, set(), request)
            if not left or slot.old <= left:
                del slots[repository]
            else:
                slot.new, slot.old = left, slot.old - left


def _tree_values(repo: _Repo, commit: str, repository: str, skip: set[str], request: HistoryRequest) -> set[str]:
    """The image's values in commit's tree (within --path), in the files not skipped."""
    values: set[str] = set()
    for path, blob in repo.tree(commit, request).items():
        if path not in skip:
            values |= repo.values(blob, path).get(repository, ("", set()))[1]
    return values


def _from_side(repo: _Repo, side: Sequence[_Change], slot: _Slot, repository: str) -> bool:
    """The merge's values of `repository`, in the files that differ from its first parent, are those of the
    merged parent (`side`: that parent's changes to the merge): the change came from that side."""
    by_new = {c.new: c for c in side if c.new}
    by_old = {c.old: c for c in side if c.old and not c.new}
    for old, new in slot.pairs:
        change = by_new.get(new) if new else by_old.get(old) if old else None
        if change is None:  # the same file on that side
            continue
        theirs = repo.values(change.old_blob, change.old).get(repository, ("", set()))[1]
        ours = repo.values(change.new_blob, change.new).get(repository, ("", set()))[1]
        if theirs != ours:
            return False
    return True


Tips = dict[str, "str | None"]  # a path in some commit -> its path at the branch's tip (None: removed since)


def _tip(tips: Tips, path: str) -> str | None:
    return tips.get(path, path)


def _older(tips: Tips, changes: Sequence[_Change]) -> Tips:
    """`tips` (paths of a commit) for the commit the changes were made from: renamed files are followed,
    removed ones are gone."""
    out = dict(tips)
    for change in changes:
        if change.old is not None and change.new != change.old:
            out[change.old] = None if change.new is None else _tip(tips, change.new)
    return out


def _entries_for(repo: _Repo, commit: str, parents: Sequence[str], request: HistoryRequest, tips: Tips,
                 boundary: set[str], outer: tuple[str, ...] = ()) -> tuple[list[HistoryEntry], Tips]:
    """The entries of one commit (its changes from its first parent), and `tips` for that parent.  A merge
    whose value came from a merged side (equal to that parent's) is replaced by the entries of that side's
    own commits, newest first (a `git pull` merge, a merged review branch); one resolved to a value no parent
    had is itself the entry.  `outer`: for a commit of a side, the first parents of the merges that brought
    it: a change it merged from their history (a branch that merged main, then was merged into main) is read
    there, not again here.  _Shallow when a commit to read lacks its parents in a clone that can deepen."""
    if commit in boundary:
        raise _Shallow(commit)
    first = parents[0] if parents else None
    changes = repo.diff(first, commit, request)
    slots = _slots(repo, changes)
    if first is not None and slots:
        _tree_changes(repo, first, commit, slots, request)
    merged: list[HistoryEntry] = []
    for other in parents[1:] if slots else ():
        side = repo.diff(other, commit, request)
        taken = {r for r, slot in slots.items() if _from_side(repo, side, slot, r)}
        if not taken:
            continue
        if any(git.is_ancestor(repo.path, other, base) for base in outer):  # merged from the enclosing line
            for repository in taken:
                del slots[repository]  # read there
            continue
        try:
            found = _side_entries(repo, other, first, request, _older(tips, side), boundary, outer)
        except _Shallow:
            if repo.can_deepen():
                raise
            continue  # no more history to read that side from: the merge is the entry
        for repository in taken:
            mine = [e for e in found if e.repository == repository]
            if mine and _sets(mine[0], slots[repository].new):  # the side's newest change set the merge's value
                merged += mine
                del slots[repository]
            elif not mine and outer:  # the side's own commits changed nothing: the value came from a line
                del slots[repository]  # enclosing this side (a branch merging a newer main's branch), read there
            # else the merge is the entry: the side found nothing (a top-level merge), or its newest change set
            # another value (a conflict resolved to an older one)
    return _make_entries(repo, commit, slots, tips) + merged, _older(tips, changes)


def _sets(entry: HistoryEntry, values: set[str]) -> bool:
    """Whether `entry` set the values `values` (a slot's `new`: `tag`, `tag@digest`, `@digest`): each is one
    of the entry's, a tag or digest the files do not write taken from the entry (its trailer's tag)."""
    def matches(value: str, given: str) -> bool:
        tag, digest = split_value(value)
        other_tag, other_digest = split_value(given)
        return (tag is None or tag == other_tag) and (digest is None or digest == other_digest)

    # a commit writing several forms of one value (`v2`, `v2@sha256:...`, `@sha256:...`) has one entry value
    return (all(any(matches(v, e) for e in entry.values) for v in values)
            and all(any(matches(v, e) for v in values) for e in entry.values))


def _side_entries(repo: _Repo, tip: str, base: str | None, request: HistoryRequest, tips: Tips,
                  boundary: set[str], outer: tuple[str, ...] = ()) -> list[HistoryEntry]:
    """The entries of the commits a merge brought from its parent `tip` (those `base`, its first parent,
    lacks, and the `outer` lines too), along that side's first-parent line, newest first."""
    entries: list[HistoryEntry] = []
    if base is None:
        return entries
    for commit, parents in repo.side(tip, base, *outer):
        if not parents and boundary:  # a root of a shallow clone: where the side joins may not be fetched yet
            raise _Shallow(commit)
        found, tips = _entries_for(repo, commit, parents, request, tips, boundary, (base, *outer))
        entries += found
    return entries


def _make_entries(repo: _Repo, commit: str, slots: dict[str, _Slot], tips: Tips) -> list[HistoryEntry]:
    if not slots:
        return []
    date, author, subject, trailers = repo.meta(commit)
    images = trailers.get("Image", [])
    entries = []
    for repository, slot in sorted(slots.items()):
        set_to = _entry_values(images, repository, slot.new)
        tag, digest = split_value(set_to[0]) if len(set_to) == 1 else (None, None)
        files = sorted({tip for _, new in slot.pairs if new for tip in [_tip(tips, new)] if tip})
        in_commit = sorted({path for old, new in slot.pairs for path in [new or old] if path})
        entries.append(HistoryEntry(
            repository=repository, name=slot.name, tag=tag, digest=digest,
            previous=shown(slot.old) or None, commit=commit, date=date, author=author,
            subject=subject, files=files, commit_files=in_commit,
            source_commit=_first(trailers.get("Source-Commit")),
            rollback_of=_first(trailers.get("Rollback-Of")),
            by_gitops=bool(images), values=set_to,
        ))
    return entries


def _where(commit: str | None, path: str | None) -> str:
    return f"{(commit or '')[:12]}:{path}"


def _first(values: list[str] | None) -> str | None:
    return values[0] if values else None


def _entry_values(images: list[str], repository: str, new: set[str]) -> list[str]:
    """The value(s) one commit set an image to, from the new values of its references (the `tag`,
    `tag@digest` and `@digest` forms bump writes) and its `Image:` trailers.  One value: the tag the
    trailer names (when the files hold no other: a digest-only pin, `repo@sha256:...`, a kustomize entry
    or Helm map with a digest and no tag, gets it too), or the one tag written, with the digest the files
    pin it to (what was deployed), else the trailer's.  Several tags and no trailer naming the one tag
    written (two containers at two tags), or several digests and no tag: every value, sorted; which is the
    image's is not guessed."""
    pairs = [split_value(v) for v in sorted(new)]
    tags = {t for t, _ in pairs if t}
    tag = recorded = None
    for text in images:
        ref = try_parse(text)
        if ref is not None and ref.normalized_name == repository and ref.tag is not None and tags <= {ref.tag}:
            tag, recorded = ref.tag, ref.digest
            break
    if tag is None:
        if len(tags) != 1:
            return sorted(new)
        tag = tags.pop()
    paired = {d for t, d in pairs if d and t == tag}
    digests = paired or {d for t, d in pairs if d and t is None}
    digest = digests.pop() if len(digests) == 1 else recorded if not digests else None
    return [value_text(tag, digest)]


def _walk(repo: _Repo, request: HistoryRequest) -> Iterator[HistoryEntry]:
    done: set[str] = set()
    tips: Tips = {}
    window = _AHEAD_MIN // 2
    while True:
        stalled = False
        boundary = repo.shallow_boundary()  # read once per fetch, not once per commit
        line = repo.commits()
        ahead = 0  # the commits of the line read ahead so far
        for at, (commit, parents) in enumerate(line):
            if commit in done:
                continue
            if at >= ahead:  # read the next commits' changes in one go, twice as many each time: the limit
                window = min(_AHEAD_MAX, window * 2)  # may be near, and a long history is read in few commands
                ahead = at + window
                repo.diffs([(p[0] if p else None, c) for c, p in line[at:ahead]
                            if c not in done and c not in boundary], request)
            try:  # a commit is read whole (a merge with its side) or not at all: read again once deepened
                entries, older = _entries_for(repo, commit, parents, request, tips, boundary)
            except _Shallow:
                stalled = True  # shallow boundary: need more history to diff this commit
                break
            done.add(commit)
            tips = older
            yield from entries
        if not stalled:
            return
        if not repo.deepen():  # a shallow local checkout (CI's depth 1): its history ends here, not the repo's
            repo.cut_at = commit
            return


def _check_request(request: HistoryRequest) -> None:
    if request.limit < 1:
        raise UsageError(f"--limit {request.limit}: must be 1 or more")
    if request.container is not None and not request.container.strip():
        raise UsageError(f"{request.names('container', request.container)}: empty; give a container's name, "
                         "or leave it out")
    if request.branch is not None:  # as bump and sync refuse it (`main~1`, `refs/heads/x`, `-x`): exit 2
        from gitops_cli.bump import check_branch

        check_branch(request.branch, request.names("branch", request.branch))


def read_history(request: HistoryRequest, environ: Mapping[str, str] | None = None) -> HistoryResult:
    _check_request(request)
    remote = deployrepo.open_remote(request.deploy_repo, ssh_key=request.ssh_key, environ=environ,
                                    names=request.names)
    if remote.local is not None:  # read the local checkout's history in place; never touch its files
        from gitops_cli.bump import scope_paths

        git.toplevel(remote.local, hint=f"give {request.names.flag('deploy_repo')} a checkout of the deploy repo, "
                     "or its URL")  # not a checkout: exit 4
        root, paths = scope_paths(remote.local, request.paths)  # a subdirectory is the implicit --path
        names = request.names.given("paths", paths, request.paths)  # messages name them as given
        return _read_local(root, replace(request, paths=paths, names=names))
    with TempDir("history") as tmp:
        work = tmp / "repo"
        with output.status(f"Cloning {remote.display} ({request.branch or 'its default branch'})"):
            branch = deployrepo.clone(remote, work, request.branch, depth=INITIAL_DEPTH, checkout=False)
        return _collect(_Repo(work, remote.env, remote, branch), request, remote.display, branch)


def _read_local(root: Path, request: HistoryRequest) -> HistoryResult:
    """The history of a local checkout, read in place (`request.paths` already scoped to it)."""
    branch = request.branch or deployrepo.current_branch(root) or "HEAD"
    # the branch itself, not a tag of the same name (which a bare name resolves to first)
    local = f"refs/heads/{branch}"
    rev = git.run(["rev-parse", "--verify", "--quiet", f"{local}^{{commit}}"], cwd=root, check=False)
    if request.branch is None and (rev.status != 0 or branch == "HEAD"):  # a detached checkout: its HEAD
        local = branch
        rev = git.run(["rev-parse", "--verify", "--quiet", f"{branch}^{{commit}}"], cwd=root, check=False)
    if rev.status != 0 and request.branch is None:
        heads = git.run(["for-each-ref", "--count=1", "refs/heads"], cwd=root).stdout
        raise NotFoundError(f"{root}: the repository has no commits: no history to read" if not heads
                            else f"{root}: the checked-out branch {branch} has no commits yet",
                            hint=None if not heads else "pass --branch")
    if rev.status != 0:
        raise UsageError(f"{request.names('branch', branch)}: no such branch in {root}")
    # git's lazy fetches of a partial clone's missing blobs reach its promisor remote (origin, or the remote
    # a `clone -o upstream` made): with the ssh command (BatchMode, --ssh-key, the pin) and token gitops would
    # use for it.  A full clone fetches nothing.
    env: Mapping[str, str] = {}
    promisor = _promisor_remote(root)
    spec = deployrepo.remote_spec(root, promisor) if promisor else None
    if spec:
        try:
            env = deployrepo.open_remote(spec, ssh_key=request.ssh_key, repo=root,
                                         names=Names(flags={"deploy_repo": f"remote {promisor}"})).env
        except GitopsError:  # a remote gitops cannot use: the history is read without it (no fetch needed)
            pass
    return _collect(_Repo(root, env, None, branch, rev=local), request, str(root), branch)


def _promisor_remote(root: Path) -> str | None:
    """The remote a partial clone fetches its missing objects from (`remote.NAME.promisor`, or the older
    `extensions.partialClone`), or None for a full clone."""
    res = git.run(["config", "--get-regexp", r"^(extensions\.partialclone|remote\..*\.promisor)$"], cwd=root,
                  check=False)
    for line in res.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "extensions.partialclone" and value:
            return value
        if key.endswith(".promisor") and value.lower() in ("true", "yes", "on", "1"):
            return key[len("remote."):-len(".promisor")]
    return None


def history_in_clone(work: Path, remote: deployrepo.Remote, branch: str, request: HistoryRequest) -> HistoryResult:
    """The history read from an existing shallow clone of `remote`'s `branch` (deepened in place as needed)."""
    _check_request(request)
    depth = int(git.run(["rev-list", "--count", "HEAD"], cwd=work).stdout.strip() or 1)
    return _collect(_Repo(work, remote.env, remote, branch, depth=depth), request, remote.display, branch)


def _collect(repo: _Repo, request: HistoryRequest, display: str, branch: str) -> HistoryResult:
    request = replace(request, paths=repo.check_paths(request.paths, request.names))
    entries: list[HistoryEntry] = []
    complete = True
    for entry in _walk(repo, request):
        if len(entries) == request.limit:
            complete = False
            break
        entries.append(entry)
    cut = repo.cut_at if complete else None  # the walk ended at the boundary, not at the limit
    if request.image is not None and not entries:
        if cut is not None:
            raise NotFoundError(
                f"no change of {request.image.repository_only()} found in the history of {display} ({branch}): "
                f"{shallow_cut(cut)}", hint=SHALLOW_HINT)
        raise NotFoundError(
            f"no change of {request.image.repository_only()} found in the history of {display} ({branch})",
            hint="check the image name (registry and path must match exactly) and --path"
                 + (" and --container" if request.container is not None else ""),
        )
    return HistoryResult(repository=display, branch=branch, entries=entries, complete=complete and cut is None,
                         shallow_at=cut)


SHALLOW_HINT = "fetch the rest of its history (git fetch --unshallow), or give the deploy repo's URL"


def shallow_cut(commit: str) -> str:
    """Why a shallow local checkout's history is not all of it (HistoryResult.shallow_at)."""
    return f"the checkout is shallow, and its history stops at commit {commit[:12]}"
