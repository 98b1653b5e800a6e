"""The history of an image in a deploy repo: each change of its tag/digest, newest first.

    read_history(HistoryRequest(...)) -> HistoryResult

Each entry comes from the diff of one commit on the branch's first-parent line: the values of the
image's references (located by the shared YAML locator) in the changed YAML files, before and after.
A commit made by `gitops bump`/`rollback` also carries `Image:`, `Source-Commit:` and `Rollback-Of:`
trailers, which are reported; commits made by hand are read from their diffs alone.

A remote deploy repo is cloned blobless and shallow (depth 32); when that history holds fewer entries
than asked for, it is deepened on demand (doubling), so a large repo is never cloned whole up front.
`history_in_clone` reads an existing shallow clone the same way (rollback reads the clone it bumps).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from gitops_cli import deployrepo, git, output
from gitops_cli.errors import GitopsError, NotFoundError, UsageError
from gitops_cli.imageref import ImageRef, try_parse
from gitops_cli.settings import FLAGS, Names
from gitops_cli.tempdirs import TempDir
from gitops_cli.yamledit.discover import YAML_SUFFIXES, relative_subpath

INITIAL_DEPTH = 32
MAX_DEPTH = 1 << 20
_YAML_PATHSPEC = tuple(f"*{suffix}" for suffix in YAML_SUFFIXES)
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
    previous: str | None  # the value before this commit (tag[@digest]), None when newly added
    commit: str
    date: str  # committer date, ISO 8601
    author: str
    subject: str
    files: list[str] = field(default_factory=list)
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
        return ", ".join(self.values)

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


def split_value(value: str) -> tuple[str | None, str | None]:
    tag, _, digest = value.partition("@")
    return (tag or None), (digest or None)


def _pathspec(paths: Sequence[str]) -> list[str]:
    """--path values as git pathspecs matching exactly those paths (a directory or a file): `:(literal)`,
    so `[`, `*` and `?` in a name are no wildcards.  Without --path: every YAML file."""
    return [f":(literal){p}" for p in paths] if paths else list(_YAML_PATHSPEC)


class _Repo:
    """A checkout (or blobless clone) to read history from, deepened on demand."""

    def __init__(self, path: Path, env: Mapping[str, str], remote: deployrepo.Remote | None, branch: str,
                 rev: str = "HEAD", depth: int = INITIAL_DEPTH) -> None:
        self.path = path
        self.rev = rev
        self.env = dict(env)
        self.remote = remote
        self.branch = branch
        self.depth = depth
        self.complete: set[str] = set()  # commits whose YAML blobs (under --path) are all here

    def git(self, *args: str, check: bool = True) -> git.GitResult:
        return git.run(list(args), cwd=self.path, env=self.env, check=check, strip=False)

    def deepen(self) -> bool:
        """Fetch more history; False when there is no more (or nothing to fetch from)."""
        if self.remote is None or not git.is_shallow(self.path) or self.depth >= MAX_DEPTH:
            return False
        self.depth = max(INITIAL_DEPTH, self.depth * 2)
        self.git("fetch", "--quiet", "--no-tags", f"--depth={self.depth}", "origin", f"refs/heads/{self.branch}")
        return True

    def commits(self) -> list[str]:
        return self.git("rev-list", "--first-parent", self.rev, "--").stdout.split()

    def parent(self, commit: str) -> str | None:
        res = self.git("rev-parse", "--verify", "--quiet", f"{commit}^1", check=False)
        return res.stdout.strip() or None

    def shallow_boundary(self) -> set[str]:
        """The commits whose parents were not fetched (those listed in .git/shallow)."""
        [shallow] = git.git_paths(self.path, "shallow")
        return set(shallow.read_text().split()) if shallow.is_file() else set()

    def changed_files(self, commit: str, paths: Sequence[str]) -> list[str]:
        res = self.git("diff-tree", "--no-commit-id", "-r", "--root", "--name-only", "-z", "-m",
                       "--first-parent", commit, "--", *_pathspec(paths))
        return sorted({p for p in res.paths() if p.endswith(YAML_SUFFIXES)})

    def files_naming(self, commit: str, needle: str, paths: Sequence[str]) -> list[str]:
        """The YAML files of commit's tree (within paths) whose text holds needle (`git grep -F`).  In a
        blobless clone the tree's missing YAML blobs are fetched first, in one request (git grep would
        fetch each one alone); a commit's tree is scanned at most once per fetch of its blobs."""
        if self.remote is not None and commit not in self.complete:
            deployrepo.fetch_missing_blobs(self.path, YAML_SUFFIXES, self.env, commit=commit, paths=paths)
            self.complete.add(commit)
        res = self.git("grep", "-l", "-z", "-F", "--no-textconv", "-e", needle, commit, "--", *_pathspec(paths),
                       check=False)
        if res.status not in (0, 1):  # 1: no match
            raise git.error_for(["grep"], res.status, res.stderr, what=f"reading {commit[:12]}",
                                cwd=self.path)
        prefix = f"{commit}:"
        return sorted({p.removeprefix(prefix) for p in res.paths() if p.endswith(YAML_SUFFIXES)})

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

    def show(self, commit: str | None, path: str) -> str | None:
        if commit is None:
            return None
        res = self.git("show", f"{commit}:{path}", check=False)
        return res.stdout if res.status == 0 else None

    def meta(self, commit: str) -> tuple[str, str, str, dict[str, list[str]]]:
        fmt = "%cI%x00%an <%ae>%x00%s%x00%(trailers:only,unfold)"
        date, author, subject, trailers = self.git("show", "-s", f"--format={fmt}", commit).stdout.split("\0", 3)
        parsed: dict[str, list[str]] = {}
        for line in trailers.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() in _TRAILER_KEYS:
                parsed.setdefault(key.strip(), []).append(value.strip())
        return date, author, subject, parsed


def _entries_for(repo: _Repo, commit: str, request: HistoryRequest) -> list[HistoryEntry]:
    parent = repo.parent(commit)
    changed: dict[str, dict[str, Any]] = {}
    for path in repo.changed_files(commit, request.paths):
        before = _values(repo.show(parent, path), request.image, path, _where(parent, path), request.container)
        after = _values(repo.show(commit, path), request.image, path, _where(commit, path), request.container)
        for repository, (name, values) in after.items():
            old = before.get(repository, (name, set()))[1]
            if values == old:
                continue
            slot = changed.setdefault(repository, {"name": name, "new": set(), "old": set(), "files": [],
                                                   "before": set(), "after": set()})
            slot["new"] |= values - old or values
            slot["old"] |= old - values
            slot["before"] |= old
            slot["after"] |= values
            slot["files"].append(path)
    if parent is not None:  # references added at a value the tree already had (a new overlay) change nothing
        for repository in [r for r, slot in changed.items() if _only_adds(slot)]:
            if changed[repository]["after"] <= _tree_values(repo, parent, repository, changed[repository],
                                                             request):
                del changed[repository]
    if not changed:
        return []
    date, author, subject, trailers = repo.meta(commit)
    images = trailers.get("Image", [])
    entries = []
    for repository, slot in sorted(changed.items()):
        set_to = _entry_values(images, repository, slot["new"])
        tag, digest = split_value(set_to[0]) if len(set_to) == 1 else (None, None)
        entries.append(HistoryEntry(
            repository=repository, name=slot["name"], tag=tag, digest=digest,
            previous=", ".join(sorted(slot["old"])) or None, commit=commit, date=date, author=author,
            subject=subject, files=slot["files"],
            source_commit=_first(trailers.get("Source-Commit")),
            rollback_of=_first(trailers.get("Rollback-Of")),
            by_gitops=bool(images), values=set_to,
        ))
    return entries


def _where(commit: str | None, path: str) -> str:
    return f"{(commit or '')[:12]}:{path}"


def _only_adds(slot: dict[str, Any]) -> bool:
    """The commit's changed files only added references (no value was replaced or removed there)."""
    return bool(slot["before"] <= slot["after"])


def _tree_values(repo: _Repo, parent: str, repository: str, slot: dict[str, Any],
                 request: HistoryRequest) -> set[str]:
    """The image's values in the parent's tree (within --path), in the files this commit did not change."""
    needle = repository.rsplit("/", 1)[-1]
    values: set[str] = set()
    for path in repo.files_naming(parent, needle, request.paths):
        if path in slot["files"]:
            continue
        found = _values(repo.show(parent, path), request.image, path, _where(parent, path), request.container)
        values |= found.get(repository, ("", set()))[1]
    return values


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
    while True:
        stalled = False
        boundary = repo.shallow_boundary()  # read once per fetch, not once per commit
        for commit in repo.commits():
            if commit in done:
                continue
            if commit in boundary:
                stalled = True  # shallow boundary: need more history to diff this commit
                break
            done.add(commit)
            yield from _entries_for(repo, commit, request)
        if not stalled or not repo.deepen():
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
    # git's lazy fetches of a partial clone's missing blobs reach origin: with the ssh command (BatchMode,
    # --ssh-key, the pin) and token gitops would use for it
    env: Mapping[str, str] = {}
    origin = deployrepo.origin_spec(root)
    if origin:
        try:
            env = deployrepo.open_remote(origin, ssh_key=request.ssh_key, names=deployrepo.ORIGIN, repo=root).env
        except GitopsError:  # an origin gitops cannot use: the history is read without it (no fetch needed)
            pass
    return _collect(_Repo(root, env, None, branch, rev=local), request, str(root), branch)


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
    if request.image is not None and not entries:
        raise NotFoundError(
            f"no change of {request.image.repository_only()} found in the history of {display} ({branch})",
            hint="check the image name (registry and path must match exactly) and --path"
                 + (" and --container" if request.container is not None else ""),
        )
    return HistoryResult(repository=display, branch=branch, entries=entries, complete=complete)
