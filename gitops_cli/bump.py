"""The bump use case: patch every reference to the given images in a deploy repo, commit once, push safely.

    bump(BumpRequest(...)) -> BumpResult           = prepare + apply, for `gitops bump` / `rollback`

    with prepare(request, environ) as prepared:    # validate, reach the repo, shallow clone (temp dir)
        result = apply(prepared, images)           # compute the edits, commit, push (re-apply and retry)

`build-and-bump` prepares in a background thread while the app's tests, build and push run, and applies
once the digest is known (gitops_cli.pipeline).  `reach` is the part of `prepare` without any network:
input errors (exit 2) before any work.

1. Reach the deploy repo: a shallow clone of a remote into a temp dir, or an existing local checkout.
   The clone has no checkout: apply checks out only the YAML files that name an image
   (deployrepo.check_out_matching: git grep, then a sparse checkout), again after every fetch.
   A local checkout is bumped under its lock (checkout_lock): one bump or rollback of it at a time.
2. Compute the new text of every YAML file first (yamledit.update_images, which verifies each file by
   re-parsing).  Nothing is written unless every file succeeded: all or nothing.
3. Write atomically, commit exactly those files as one commit, push without force.  A push rejected
   because the remote moved -> fetch, reset to the new remote head, re-apply (idempotent; if the remote is
   now already up to date we are done), commit, push again; at most `retries` times, jittered backoff.
   A rejection after which the branch is found where it was, twice in a row, is no race: exit 10.
"""

from __future__ import annotations

import difflib
import posixpath
import random
import string
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from gitops_cli import ci, deployrepo, filelock, git, interrupts, kustomize, output
from gitops_cli.errors import (
    EXIT_WRITE_FAILED,
    REFUSED_WRITES,
    WRITE_FAILURES,
    DirtyTreeError,
    GitError,
    GitopsError,
    LockedError,
    NotFoundError,
    PushRetriesExhaustedError,
    UsageError,
    VerificationError,
    refused_write,
)
from gitops_cli.imageref import PLACEHOLDER_RE, ImageRef, try_parse
from gitops_cli.settings import FLAGS, Names
from gitops_cli.tempdirs import TempDir

TEMPLATE_FIELDS = ("image", "repository", "tag", "digest", "old")
BACKOFF_BASE = 0.25  # seconds; attempt n waits uniform(0, min(cap, base * 2**n))
BACKOFF_CAP = 8.0
CHECKOUT_LOCK = "gitops.lock"  # in a local checkout's git common dir (its linked worktrees share it)
CHECKOUT_LOCK_WAIT = 300  # seconds a bump or rollback of a local checkout waits for another one's lock (lock_wait)

DigestResolver = Callable[[ImageRef, Any], str]
# A last check on the computed edits, before each commit (again after each fetch of a moved remote):
# a reason not to make this bump (build-and-bump: a newer commit's image is deployed), or None.
Guard = Callable[[Sequence["FileEdit"]], "str | None"]
# Called with the result as soon as a push went through, before an interrupt can be raised: a caller
# interrupted afterwards (exit 130) still reports the commit that is on the remote.
Landed = Callable[["BumpResult"], None]


@dataclass(frozen=True)
class BumpRequest:
    deploy_repo: str
    images: Sequence[ImageRef]
    branch: str | None = None
    paths: Sequence[str] = ()
    container: str | None = None
    message: str | None = None  # template with {image} {repository} {tag} {digest} {old}
    author: str | None = None  # "Name <email>" (flag or GITOPS_AUTHOR)
    push_branch: str | None = None
    commit: bool = True  # False: --no-commit (local checkout only)
    dry_run: bool = False
    retries: int = 10
    lock_wait: float = CHECKOUT_LOCK_WAIT  # a local checkout's lock held by another run: seconds to wait (0: none)
    ssh_key: Path | None = None
    trailers: Sequence[tuple[str, str]] = ()  # extra commit trailers, e.g. (("Rollback-Of", sha),)
    names: Names = FLAGS  # how messages name a setting's value (its source)
    # (file, located reference) -> change it?  rollback: only those at the value it rolls back from; None: all
    select: Callable[[str, Any], bool] | None = None


@dataclass
class FileEdit:
    path: str  # relative to the repo root, '/'-separated
    old: str
    new: str
    changes: list[Any]  # yamledit.Change
    images: list[str | None] = field(default_factory=list)  # per change: the target's normalized name


@dataclass
class BumpResult:
    repository: str  # the deploy repo as it may be printed (no credentials)
    images: list[ImageRef]
    edits: list[FileEdit] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "file:line: skipped (reason)"
    branch: str | None = None  # the branch the bump is based on
    push_branch: str | None = None  # where it was pushed (branch or --push-branch)
    commit: str | None = None
    pushed: bool = False
    attempts: int = 0  # push attempts
    dry_run: bool = False
    superseded: str | None = None  # the guard's reason: nothing was committed (edits are then empty)

    @property
    def changes(self) -> list[Any]:
        return [c for e in self.edits for c in e.changes]

    @property
    def up_to_date(self) -> bool:
        return not self.edits and self.superseded is None

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "images": [str(i) for i in self.images],
            "branch": self.branch,
            "push_branch": self.push_branch,
            "up_to_date": self.up_to_date,
            "dry_run": self.dry_run,
            "commit": self.commit,
            "pushed": self.pushed,
            "attempts": self.attempts,
            "files": [e.path for e in self.edits],
            "changes": [change_json(c, i) for e in self.edits
                        for c, i in zip(e.changes, e.images, strict=True)],
            "skipped": self.skipped,
            "superseded": self.superseded,
        }


def change_json(change: Any, image: str | None = None) -> dict[str, Any]:
    keys = ("file", "line", "column", "old", "new", "kind", "field")
    out = {k: getattr(change, k, None) for k in keys}
    out["image"] = image
    return out


# --- validation (before touching any repo) -------------------------------------------------------------


def validate(request: BumpRequest, images_required: bool = True) -> None:
    """UsageError (exit 2) for anything wrong with the request itself, before any clone.

    images_required=False: the images come later (build-and-bump knows them after publish).
    """
    if request.images or images_required:
        _validate_images(request.images)
    names = request.names
    if request.retries < 0:
        raise UsageError(f"{names('retries', request.retries)}: must be 0 or more")
    if request.lock_wait < 0:
        raise UsageError(f"{names('lock_wait', request.lock_wait)}: must be 0 or more")
    if request.author:
        deployrepo.parse_identity(request.author, names)
    if request.message is not None:
        _check_template(request.message, names)
    if request.push_branch is not None:
        check_branch(request.push_branch, names("push_branch", request.push_branch))
    if request.branch is not None:
        check_branch(request.branch, names("branch", request.branch))
    if request.container is not None and not request.container.strip():
        raise UsageError(f"{names('container', request.container)}: empty; give a container's name, or leave it out")
    for path in request.paths:  # a clone could never have it: refused before any work, not after a publish
        if _part_too_long(path):
            shown = path if len(path) <= 80 else path[:80] + "..."
            raise UsageError(f"{names('paths', shown)}: a part of it is longer than {NAME_MAX} bytes")


NAME_MAX = 255  # bytes in one part of a path


def _part_too_long(path: str) -> bool:
    """A `/`-separated part of `path` over NAME_MAX bytes: no file (or ref) can be named so."""
    return any(len(part.encode("utf-8", "surrogateescape")) > NAME_MAX for part in path.split("/"))


def _validate_images(images: Sequence[ImageRef]) -> None:
    if not images:
        raise UsageError("--image is required (NAME:TAG[@sha256:DIGEST], may repeat)")
    names = [i.normalized_name for i in images]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"--image given twice for {', '.join(dupes)}")


def _check_template(template: str, names: Names) -> None:
    allowed = ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
    what = names("message", template)
    if not template.strip():
        raise UsageError(f"{what}: empty template")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise UsageError(f"{what}: {exc} (use {{{{ and }}}} for literal braces)") from None
    for name in fields:
        if name not in TEMPLATE_FIELDS:
            raise UsageError(f"{what}: unknown placeholder {{{name}}} (allowed: {allowed})")


def check_branch(name: str, what: str) -> None:
    """A branch name as the push writes it (`refs/heads/NAME`): not `--branch`'s shorthand (`@`, `@{-1}`),
    and no full ref (`refs/heads/x` would be pushed to refs/heads/refs/heads/x).  `what`: the value as
    messages name it (settings.Names)."""
    if name.startswith("refs/"):
        raise UsageError(f"{what}: give the branch's name, without refs/heads/")
    res = git.run(["check-ref-format", f"refs/heads/{name}"], check=False)
    if res.status != 0 or name.startswith("-") or name in ("HEAD", "@") or _part_too_long(name):  # a ref is a file
        raise UsageError(f"{what}: not a valid branch name")


# --- computing and writing the edits ---------------------------------------------------------------


def _named_image(ref: Any) -> ImageRef | None:
    """The image a located reference names (a map's name, else its value), or None when it names none."""
    written = ref.name if ref.form == "map" else ref.value
    return try_parse(written) if written else None


def reference_matches(ref: Any, target: ImageRef) -> bool:
    """True when a located reference names the same repository as target (after normalisation)."""
    parsed = _named_image(ref)
    return parsed is not None and parsed.same_repository(target)


def excluded_by_container(ref: Any, container: str | None) -> bool:
    """True when --container excludes this reference (as yamledit does: string-form references only; a
    kustomize images: entry or a Helm map names no container)."""
    return container is not None and ref.form == "string" and ref.container != container


def compute_edits(
    root: Path,
    images: Sequence[ImageRef],
    paths: Sequence[str] = (),
    container: str | None = None,
    resolve_digest: DigestResolver | None = None,
    tracked: Collection[str] | None = None,
    names: Names = FLAGS,
    filtered: Mapping[str, str] | None = None,
    select: Callable[[str, Any], bool] | None = None,
) -> tuple[list[FileEdit], list[str], set[str]]:
    """(edits, skipped-file warnings, normalized names found) without writing anything.

    `select` (see BumpRequest): a reference it leaves out is not changed, and still counts as found.

    With `tracked` (the paths git tracks, for a bump that commits in a user's checkout), a file not in
    it is left as is, with a warning when it names an image: a bump commit holds only the bump.  So is a
    file of `filtered` (path -> the filter driver `git add` would run it through, see
    deployrepo.filtered_files): the filter may keep its content outside the repository, as Git LFS does,
    whose upload is a pre-push hook, which gitops' push never runs.

    With `container`, an image counts as found only when a container (or compose service) of that name
    uses it: kustomize `images:` entries and Helm maps name no container, so a misspelt --container
    must not bump them alone (the caller exits 3).  A kustomize entry counts for a container of its
    kustomization's resources using its `name`; one the bump changes that also applies to a container of
    another name there, or whose resources gitops cannot all read, is refused (exit 13, see
    _kustomize_containers).

    Only files containing a target's last path component are parsed.  A file that changes is parsed by
    update_images only (plus its verifying re-parse); `locate` runs just to attribute changes when several
    images are bumped, and, at the end, on unchanged candidates to tell "already up to date" from "not found"
    (a file counted up to date with a reference in it that is not at its target is a VerificationError).
    A file stored in Git LFS (its pointer) is never bumped; it is among the warnings only when an image is
    not found, which it may hold.
    A reference the bump leaves as it is (yamledit.Kept: a placeholder in its tag or digest, a kustomize entry's
    tagSuffix) does not count as found: each is named in a warning; a tagSuffix entry whose `name` is the image
    bumped (its suffix goes on the tag of that image in its resources, which the bump changes) only when the
    image is not found.
    Raises VerificationError (from yamledit) when any file cannot be patched verifiably, UsageError for
    a bad `paths` value (named as `names` does: its source).
    """
    from gitops_cli.yamledit import (
        YamlSyntaxError,
        discover,
        kept,
        kept_references,
        locate,
        needles_for,
        read_text,
        update_images_located,
    )

    targets = list(images)
    needles = needles_for(targets)
    wanted = {t.normalized_name: t for t in targets}
    edits: list[FileEdit] = []
    skipped: list[str] = []
    found: set[str] = set()
    unchanged: list[tuple[str, str]] = []
    in_container: set[str] = set()
    located: dict[str, list[Any]] = {}  # with --container: the references of each file searched
    entries: list[tuple[str, Any, ImageRef, bool]] = []  # kustomize entries of a target: (file, entry, target, changed)
    in_lfs: list[str] = []  # warnings for the files stored in Git LFS: any of them may hold an image not found
    unnamed: list[str] = []  # with --path: files that name no target, but may tag one (`image: {tag: v1}`)
    suffixed: list[tuple[str, str]] = []  # (warning, target) for a tagSuffix entry of its name: if it is not found
    for path in discover(root, list(paths) or None, names):
        rel = path.relative_to(root).as_posix()
        try:
            text = read_text(path)
        except UnicodeDecodeError:  # not YAML (YAML is Unicode); only worth a word if it names an image
            skip = _not_utf8(path, needles)
            if skip:
                skipped.append(f"{rel}:{skip}")
            continue
        if text.startswith(deployrepo.LFS_POINTER):  # its content is in Git LFS: named if an image is not found
            in_lfs.append(f"{rel}: skipped (a Git LFS pointer: the file is stored in Git LFS, which gitops does "
                          "not read or bump)")
            continue
        if not any(n in text for n in needles):
            if paths and ("tag" in text or "digest" in text):  # it may tag an image it does not name
                unnamed.append(rel)
            continue
        if tracked is not None and rel not in tracked:
            skipped.append(f"{rel}: skipped (not tracked by git: a bump commit holds only tracked files)")
            continue
        if filtered and rel in filtered:
            skipped.append(f"{rel}: skipped (git commits it through the filter {filtered[rel]!r} its .gitattributes "
                           "name, which may keep the content outside the repository: Git LFS uploads it from a "
                           "pre-push hook, which gitops' push does not run; bump it with --no-commit and commit "
                           "it yourself)")
            continue
        try:
            new, changes, searched = update_images_located(
                text, targets, container=container, resolve_digest=_naming_file(resolve_digest, rel), filename=rel,
                select=_in_file(select, rel))
        except YamlSyntaxError as exc:
            skipped.append(f"{rel}:{exc.line}: skipped ({exc.message})")
            continue
        keeps = _may_keep(text)
        # the references update_images searched (those of the documents mentioning a target: every one it may
        # change or count) serve to attribute changes; a text that may hold one the bump keeps as it is (a
        # placeholder, a tagSuffix) is searched whole, for the warnings
        references = locate(text, needles, filename=rel).references if keeps else searched
        named = _names(references, wanted)
        for held, target in kept_references(references, targets, container) if keeps else []:
            warning = _kept_warning(rel, held)
            base = try_parse(held.ref.fields["name"].value) if held.why == "tagSuffix" else None
            if base is not None and base.same_repository(target):  # the suffix goes on the tag bumped here
                suffixed.append((warning, target.normalized_name))
            else:
                skipped.append(warning)
        if container is not None:  # the images this container uses (kustomize/Helm entries name none)
            in_container |= {n for r, n in zip(references, named, strict=True)
                             if n is not None and r.form == "string" and r.container == container}
            if keeps:  # whole: the kustomizations' resources among the files searched are not read again
                located[rel] = references
            changed = {(c.line, c.column) for c in changes}
            entries += [(rel, r, wanted[n], bool(changed & _spots(r))) for r, n in zip(references, named, strict=True)
                        if n is not None and r.kind == "kustomize" and kept(r) is None]
        if new == text:
            unchanged.append((rel, text))
            continue
        owners = _owners(changes, references, named, wanted)
        found.update(o for o in owners if o is not None)
        # every target this file references counts, not only those it changes: one at its target already
        # (its other references changed here) is up to date, not missing; a change we could not attribute
        # is one of them (a target no container of that name uses is taken out below, as for any file)
        found |= _named(references, named, container)
        edits.append(FileEdit(rel, text, new, list(changes), owners))
    if container is not None:
        in_container = _kustomize_containers(root, entries, located, container, in_container, names)
    for rel, text in unchanged:  # already at the target, or no reference at all?
        if found >= wanted.keys():
            break
        references = locate(text, needles, filename=rel).references
        _check_up_to_date(rel, text, references, targets, container, resolve_digest, _in_file(select, rel))
        found |= _named(references, _names(references, wanted), container)
    if container is not None:  # an image no container of that name uses is not found, whatever else names it
        found &= in_container
    if not found >= wanted.keys():  # part of the explanation: these files could not be read, these entries add a suffix
        skipped += in_lfs + [warning for warning, target in suffixed if target not in found]
    skipped += _tag_only(root, [*unnamed, *(rel for rel, _ in unchanged if paths)])
    return edits, skipped, found


TAG_ONLY = "an `image:` map that names no repository"
PLACEHOLDER = "is a placeholder, which gitops never overwrites"
TAG_SUFFIX = "a kustomize `images:` entry with a tagSuffix and no newTag or digest"


class Skipped(str):
    """A warning "FILE:LINE: skipped (...)" that can explain an image not found (exit 3, see _not_found): the
    text, plus `why` (TAG_ONLY, PLACEHOLDER or TAG_SUFFIX), `where` (FILE:LINE) and `image` (the image a
    placeholder's tag or digest belongs to) for that explanation to read, not parse back out of the text."""

    why: str
    where: str
    image: ImageRef | None

    def __new__(cls, where: str, reason: str, why: str, image: ImageRef | None = None) -> Skipped:
        self = super().__new__(cls, f"{where}: skipped ({reason})")
        self.why, self.where, self.image = why, where, image
        return self


def _names(references: Sequence[Any], wanted: Mapping[str, ImageRef]) -> list[str | None]:
    """The target (normalized name, a key of `wanted`) each reference names (see reference_matches), or None:
    each reference's name parsed once and looked up, not compared with every target."""
    out: list[str | None] = []
    for ref in references:
        parsed = _named_image(ref)
        out.append(parsed.normalized_name if parsed is not None and parsed.normalized_name in wanted else None)
    return out


def _named(references: Sequence[Any], named: Sequence[str | None], container: str | None) -> set[str]:
    """The targets (normalized names) that these references (each naming the target in `named`: see _names)
    count as found: not those --container leaves out, nor those the bump leaves as they are (yamledit.kept: a
    placeholder, a kustomize entry's tagSuffix)."""
    from gitops_cli.yamledit import kept

    return {n for r, n in zip(references, named, strict=True)
            if n is not None and not excluded_by_container(r, container) and kept(r) is None}


def _may_keep(text: str) -> bool:
    """Cheap pre-filter: may the text hold a reference the bump leaves as it is (yamledit.kept)?"""
    return "tagSuffix" in text or PLACEHOLDER_RE.search(text) is not None


def _kept_warning(rel: str, held: Any) -> Skipped:
    """"FILE:LINE: skipped (...)" for a reference the bump leaves as it is (a yamledit.Kept)."""
    if held.why == "placeholder":
        return Skipped(f"{rel}:{held.line}", f"the {held.part} of {held.image}, {held.detail!r}, {PLACEHOLDER}: "
                       "whatever fills it in (Flux's postBuild substitution, Helm, envsubst, ...) sets it",
                       PLACEHOLDER, held.image)
    return Skipped(f"{rel}:{held.line}", f"{TAG_SUFFIX}: kustomize appends {held.detail!r} to the tag its resources "
                   f"give {held.ref.fields['name'].value}, and drops the suffix for a newTag, which gitops never adds",
                   TAG_SUFFIX)


def _tag_only(root: Path, rels: Sequence[str]) -> list[Skipped]:
    """Warnings naming each `image:` map of these files (with --path: those the bump left as they were) that sets
    a tag but names no repository (a Helm values override file: `values-staging.yaml` with `image: {tag: v1}`,
    layered over the chart's values.yaml): it may tag the image bumped, but it is no reference, since nothing in
    the file says which image it tags, and which values files are layered (in which order) is the Application's
    or HelmRelease's business, which gitops does not read."""
    from gitops_cli.yamledit import locate, read_text

    out: list[Skipped] = []
    for rel in rels:
        try:
            text = read_text(root / rel)
        except (OSError, UnicodeDecodeError):
            continue
        for line in sorted({s.line for s in locate(text, filename=rel).tag_only}):
            out.append(Skipped(f"{rel}:{line}", f"a tag in {TAG_ONLY}, as in a Helm values override file: gitops "
                               "cannot tell which image it tags", TAG_ONLY))
    return out


def _check_up_to_date(rel: str, text: str, references: list[Any], targets: list[ImageRef], container: str | None,
                      resolve_digest: DigestResolver | None, select: Callable[[Any], bool] | None = None) -> None:
    """Before a file update_images left as it was counts as "already up to date": VerificationError (exit 13)
    if a reference in it that the bump applies to is not at its target (found, but not edited)."""
    from gitops_cli.yamledit import pending

    missed = pending(text, references, targets, container=container,
                     resolve_digest=_naming_file(resolve_digest, rel), filename=rel, select=select)
    if missed:
        change = missed[0]
        what = f"{change.old!r} -> {change.new!r}"
        raise VerificationError(
            f"{rel}:{change.line}: a reference found there was not bumped "
            f"({f'{change.field}: ' if change.field else ''}{what}); nothing was written",
            hint="this is a gitops bug: edit the value by hand, and report the file that gave this")


def _kustomize_containers(root: Path, entries: Sequence[tuple[str, Any, ImageRef, bool]],
                          located: Mapping[str, Sequence[Any]], container: str, in_container: set[str],
                          names: Names) -> set[str]:
    """With --container: `in_container` (the targets a container of that name uses) with those it gets
    through a kustomize `images:` entry.

    kustomize sets an entry's image in every container of the kustomization's resources whose image is the
    entry's `name`, whatever the container's name (see _Closures: the files the kustomization renders,
    each read for it, whether it names a target or not; `located`: the references of the files searched
    already).  One that --container leaves out would be moved along with the entry, and left out of the
    bump it would set the named one back.  A bump of a target the named container uses that changes such
    an entry is refused (VerificationError, exit 13: nothing is written), naming the entry and the other
    container; so is one whose kustomization's resources gitops cannot all read (a remote one, say): which
    containers the entry moves is then unknown.  (A target no container of that name uses is not found:
    the caller's exit 3, a misspelt --container.)"""
    closures = _Closures(root, located)
    applying: list[tuple[str, Any, ImageRef, ImageRef, list[tuple[str, Any]], str | None]] = []
    used = set(in_container)
    for rel, entry, target, changed in entries:
        name = entry.fields.get("name")
        image = try_parse(name.value) if name is not None else None
        if image is None:
            continue
        files, unknown = closures.of(rel)
        applies = [(where, ref) for where in files for ref in closures.references(where)
                   if ref.kind == "container" and reference_matches(ref, image)]
        if any(ref.container == container for _, ref in applies):
            used.add(target.normalized_name)
        if changed:
            applying.append((rel, entry, image, target, applies, unknown))
    for rel, entry, image, target, applies, unknown in applying:
        others = [(where, ref) for where, ref in applies if ref.container != container]
        if target.normalized_name not in used or not (others or unknown):
            continue
        if others:
            where, ref = others[0]
            other = f"container {ref.container!r}" if ref.container is not None else "a container with no name"
            reason = f"{other} ({where}:{ref.line}) too, which {names('container', container)} leaves out"
        else:
            reason = (f"and gitops cannot tell which: {unknown}, so a container {names('container', container)} "
                      "leaves out may use it")
        raise VerificationError(
            f"{rel}:{entry.line}: this kustomize images: entry sets {image.name} in every container using it, "
            f"{reason}; nothing was written",
            hint="bump without --container, or give the containers to keep back an image name of their own "
                 "(kustomize images: entries match containers by image name)")
    return used


class _Closures:
    """The files a kustomization renders (gitops_cli.kustomize.walk: its resources, bases and components,
    followed through directories, and its patch files), and the references in them, each read once."""

    def __init__(self, root: Path, located: Mapping[str, Sequence[Any]]) -> None:
        self.root = root
        self.located = dict(located)
        self.closures: dict[str, tuple[list[str], str | None]] = {}

    def of(self, rel: str) -> tuple[list[str], str | None]:
        """(the files the kustomization file `rel` renders, why that list may be incomplete or None)."""
        if rel not in self.closures:
            self.closures[rel] = _kustomize_closure(self.root, rel)
        return self.closures[rel]

    def references(self, rel: str) -> Sequence[Any]:
        """The references in the file `rel` (none when it cannot be read or parsed: kustomize fails on it)."""
        from gitops_cli.yamledit import locate, read_text

        if rel not in self.located:
            try:
                text = read_text(self.root / rel)
            except (OSError, UnicodeDecodeError):
                return []
            self.located[rel] = locate(text, filename=rel).references
        return self.located[rel]


def _kustomize_closure(root: Path, rel: str) -> tuple[list[str], str | None]:
    """(the files, repo-relative, that the kustomization file `rel` renders; None, or why gitops cannot
    tell them all: a resources/bases/components entry that is remote or names nothing it can read, a
    kustomization below that does not parse, or `rel` is no kustomization file kustomize reads)."""
    shown = Path(rel)
    if shown.name not in kustomize.KUSTOMIZATION_FILES or kustomize.kustomization_file(root, shown.parent) is None:
        return [], (f"{rel} is not a kustomization file (kustomize reads {', '.join(kustomize.KUSTOMIZATION_FILES)}"
                    "; a Flux Kustomization's images apply to the manifests of its spec.path, a Flux HelmRelease's "
                    "post-renderer images to its chart's, an Argo CD Application's kustomize.images to those of its "
                    "source path)")
    files: dict[str, None] = {}  # in walk order, each once
    problems: list[str] = []
    for entry in kustomize.walk(root, shown.parent, partial(_kustomization, root, problems)):
        where = _kustomization_shown(root, entry.kustomization) if entry.kind != "file" else ""
        if entry.kind == "file":
            assert entry.path is not None
            files[entry.path.as_posix()] = None
            if entry.key in kustomize.PATCH_KEYS and _json_patch_sets_image(root, entry.path):
                problems.append(f"{entry.path.as_posix()}: a JSON patch sets a container's image by its index in "
                                "the list, not by its name")
        elif entry.key in kustomize.PATCH_KEYS:
            continue  # an inline patch, or one kustomize fails to read
        elif entry.remote:
            problems.append(f"{where} has the remote {entry.key} entry {entry.value!r}")
        elif entry.kind is None:
            problems.append(f"{where}: {entry.key} entry {entry.value!r} names no file or directory gitops can "
                            "read in the repository")
        elif kustomize.kustomization_file(root, entry.path or Path()) is None:
            problems.append(f"{where}: {entry.key} entry {entry.value!r} is a directory with no kustomization file")
    return list(files), problems[0] if problems else None


def _json_patch_sets_image(root: Path, rel: Path) -> bool:
    """Is the patch file `rel` a JSON 6902 patch (a list of operations) with one that may set an image: its
    path ends in /image, or its value holds an `image` key (an added container)?  Unreadable: False (kustomize
    fails on it)."""
    from gitops_cli.sync import load_documents
    from gitops_cli.yamledit import read_text

    try:
        docs = load_documents(read_text(root / rel), rel.as_posix())
    except (OSError, UnicodeDecodeError, GitopsError):
        return False

    def holds_image(value: Any) -> bool:
        if isinstance(value, dict):
            return "image" in value or any(holds_image(v) for v in value.values())
        return isinstance(value, list) and any(holds_image(v) for v in value)

    ops = docs[0] if docs and isinstance(docs[0], list) else []
    return any(isinstance(op, dict) and "op" in op
               and (str(op.get("path", "")).rstrip("/").endswith("/image") or holds_image(op.get("value")))
               for op in ops)


def _kustomization_shown(root: Path, d: Path) -> str:
    """The kustomization file of the repo directory `d` as messages name it (`apps/a/kustomization.yaml`)."""
    path = kustomize.kustomization_file(root, d)
    return (d / (path.name if path is not None else kustomize.KUSTOMIZATION_FILES[0])).as_posix()


def _kustomization(root: Path, problems: list[str], d: Path) -> dict[str, Any] | None:
    """The kustomization of the repo directory `d` (its first document), None when it has none; one that
    cannot be read or parsed is None too, with the reason in `problems`."""
    from gitops_cli.sync import read_kustomization

    try:
        return read_kustomization(root, d)
    except GitopsError as exc:
        problems.append(exc.message)
        return None


def _not_utf8(path: Path, needles: Sequence[str]) -> str | None:
    """"LINE: skipped (...)" for a file that is not UTF-8 but names a target; None when it names none."""
    data = path.read_bytes()
    if not any(n.encode() in data for n in needles):
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return f"{line}: skipped (not UTF-8 text: byte {exc.start})"
    return None


def _in_file(select: Callable[[str, Any], bool] | None, rel: str) -> Callable[[Any], bool] | None:
    """A request's `select` for the references of one file."""
    return None if select is None else (lambda ref: select(rel, ref))


def _naming_file(resolve: DigestResolver | None, rel: str) -> DigestResolver | None:
    """The resolver, with its errors naming the file and line that needs the digest."""
    if resolve is None:
        return None

    def resolve_for(target: ImageRef, reference: Any) -> str:
        try:
            return resolve(target, reference)
        except UsageError as exc:  # bad configuration (e.g. of the registry) stays exit 2
            raise type(exc)(f"{rel}:{reference.line}: needs the digest of {target}: {exc.message}",
                            hint=exc.hint) from None
        except GitopsError as exc:  # the registry's reason, under the documented code: exit 13
            raise VerificationError(f"{rel}:{reference.line}: needs the digest of {target}, which could not "
                                    f"be resolved: {exc.message}; nothing was written", hint=exc.hint) from None

    return resolve_for


def _owners(changes: Sequence[Any], references: Sequence[Any], named: Sequence[str | None],
            wanted: Mapping[str, ImageRef]) -> list[str | None]:
    """The target each change belongs to: the one the reference at the change's position (or whose map it
    edits) names (`named`: see _names), the first such reference in file order; for a change at none, the
    target its new value names.  One index of the references' spots, each change a lookup (not a pass over
    every reference: a file of N changes was N x N)."""
    if len(wanted) == 1:
        return [next(iter(wanted))] * len(changes)
    at: dict[tuple[int, int], str | None] = {}
    for ref, name in zip(references, named, strict=True):
        for spot in _spots(ref):
            at.setdefault(spot, name)
    owners: list[str | None] = []
    for change in changes:
        pos = (getattr(change, "line", None), getattr(change, "column", None))
        if pos in at:
            owners.append(at[pos])
            continue
        value = str(getattr(change, "new", ""))
        new = try_parse(value)
        owners.append(new.normalized_name if new is not None and "/" in value and new.normalized_name in wanted
                      else None)
    return owners


def _spots(ref: Any) -> set[tuple[int, int]]:
    """(line, column) of every place a change of this reference is reported at: its value (string form),
    its first key and each field (map form: a changed field, or an inserted one)."""
    spots = {(ref.line, ref.column)} | {(f.line, f.column) for f in ref.fields.values()}
    if ref.scalar is not None:
        spots.add((ref.scalar.line, ref.scalar.column))
    return spots


def write_edits(root: Path, edits: Sequence[FileEdit]) -> None:
    """The edits written to the work tree (atomic, not fsynced, as `git checkout` writes files): all of them,
    or none -- what --no-commit needs (no commit to reset to), and a commit's edits get it too.  An interrupt
    (interrupts.held) stops the writing and the files written are put back as they were before Interrupted
    is raised, saying so; so does a write that fails (its file is untouched: write_atomic), before its error
    is raised.  The undoing takes no longer than the writing did; a second interrupt meanwhile ends gitops
    at once."""
    from gitops_cli.yamledit import write_atomic

    written: list[FileEdit] = []
    with interrupts.held() as stopping:
        try:
            for edit in edits:
                if stopping.is_set():
                    break
                write_atomic(root / edit.path, edit.new, durable=False)
                written.append(edit)
        except BaseException:
            _unwrite(root, written)
            raise
        if stopping.is_set():
            _unwrite(root, written)
            raise interrupts.Interrupted("no file was changed" + (
                f" (the {len(written)} written were put back as they were)" if written else ""))


def _unwrite(root: Path, written: Sequence[FileEdit]) -> None:
    """Put files write_edits wrote back as they were (a warning names each one that cannot be)."""
    from gitops_cli.yamledit import write_atomic

    for edit in reversed(written):
        try:
            write_atomic(root / edit.path, edit.old, durable=False)
        except OSError as exc:
            output.warn(f"{edit.path}: could not be put back as it was ({exc.strerror or exc}); "
                        "check it with git diff")


def _not_found(images: Sequence[ImageRef], found: set[str], where: str, paths: Sequence[str],
               container: str | None, names: Names, skipped: Sequence[str] = ()) -> NotFoundError:
    """skipped: the warnings of compute_edits; those naming a tag-only `image:` map (see _tag_only), a placeholder or a
    kustomize tagSuffix entry the bump left as it is (_kept_warning) explain it."""
    absent = [i for i in images if i.normalized_name not in found]

    def at(why: str) -> str:
        spots = [w.where for w in skipped if isinstance(w, Skipped) and w.why == why and _of(w)]
        return f"{', '.join(spots[:3])}{', ...' if len(spots) > 3 else ''}" if spots else ""

    def _of(warning: Skipped) -> bool:
        """Whether a warning may explain one of the images not found: a placeholder's names one of them (not
        one found elsewhere); the others name no image."""
        return warning.image is None or any(warning.image.same_repository(i) for i in absent)

    tag_only, templated, suffixed = at(TAG_ONLY), at(PLACEHOLDER), at(TAG_SUFFIX)
    missing = [str(i.repository_only()) for i in absent]
    scope = f"{where}" + (f" (paths: {', '.join(paths)})" if paths else "")
    if container:
        return NotFoundError(
            f"{names('container', container)}: no container of that name uses {', '.join(missing)} in the YAML "
            f"files of {scope}; nothing was changed",
            hint="check --container (kustomize images: and Helm values entries name no container: they are "
                 "bumped only together with a container of that name that uses the image)",
        )
    reasons, hints = [], []
    if tag_only:
        reasons.append(f"the tag at {tag_only} is in {TAG_ONLY} (a values override file), so gitops cannot tell "
                       "which image it tags")
        hints.append(f"write the repository beside the tag (`repository: {missing[0]}`: Helm merges the values files "
                     "key by key, so the chart renders the same), or bump the values file that names the image")
    if templated:
        reasons.append(f"the tag or digest at {templated} {PLACEHOLDER}")
        hints.append("set the value where the placeholder is filled in (a Flux postBuild substitution, Helm values, "
                     "your CI's environment), or write the tag in its place for gitops to bump")
    if suffixed:
        reasons.append(f"at {suffixed}, {TAG_SUFFIX} takes its tag from the kustomization's resources")
        hints.append("bump the image the kustomization's resources name: kustomize appends the suffix to its tag")
    if reasons:
        return NotFoundError(
            f"no reference to {', '.join(missing)} found in the YAML files of {scope}: " + "; ".join(reasons),
            hint="; or ".join(hints) if len(hints) > 1 else hints[0],
        )
    return NotFoundError(
        f"no reference to {', '.join(missing)} found in the YAML files of {scope}",
        hint="check the image name (registry and path must match exactly), --path and --container",
    )


# --- commit message -------------------------------------------------------------------------------------


def old_values(image: ImageRef, edits: Sequence[FileEdit]) -> list[str]:
    """The image's values before the bump, as `history` shows them (`tag`, `tag@digest` or `@digest`), each
    once: the value of each changed reference as a whole (a string, or a kustomize / Helm map's name, tag
    and digest together), in file order; a tag or a digest alone is left out where another value holds it
    (`v1` and `@sha256:1...` beside `v1@sha256:1...`).  For `{old}` in a commit message.
    Only the references the edits change: not those a bump leaves as they are (at another value, or at
    the target already), whose values a rollback's guard reads instead (rollback.Undo, not this)."""
    return _old_values([image], edits)[image.normalized_name]


def _old_values(images: Sequence[ImageRef], edits: Sequence[FileEdit]) -> dict[str, list[str]]:
    """old_values of each image (by normalized name), each edited file located once for all of them (not
    once an image: 50 images in one file were 50 readings of it)."""
    from gitops_cli.history import value_text
    from gitops_cli.yamledit import locate

    wanted = {i.normalized_name: i for i in images}
    values: dict[str, dict[tuple[str | None, str | None], None]] = {n: {} for n in wanted}  # ordered sets
    for e in edits:
        changed: dict[tuple[Any, Any], set[str]] = {}  # position -> the images changed there
        for c, name in zip(e.changes, e.images, strict=True):
            if name in wanted:
                changed.setdefault((getattr(c, "line", None), getattr(c, "column", None)), set()).add(name)
        if not changed:
            continue
        references = locate(e.old, filename=e.path).references
        for ref, name in zip(references, _names(references, wanted), strict=True):
            if name is None or not any(name in changed.get(spot, ()) for spot in _spots(ref)):
                continue
            parsed = try_parse(ref.value)
            if parsed is not None and (parsed.tag or parsed.digest):
                values[name].setdefault((parsed.tag, parsed.digest), None)
    out: dict[str, list[str]] = {}
    for name, held in values.items():
        kept = [(tag, digest) for tag, digest in held
                if not any((tag, digest) != other and tag in (None, other[0]) and digest in (None, other[1])
                           for other in held)]
        out[name] = [value_text(tag, digest) for tag, digest in kept]
    return out


def render_message(
    images: Sequence[ImageRef], edits: Sequence[FileEdit], template: str | None, info: ci.CIInfo,
    extra: Sequence[tuple[str, str]] = (),
) -> str:
    """Subject (+ one line per image when several), then trailers Image:, Source-Commit:, CI-Run:.  The
    template (--message) has the secrets gitops knows of masked before it is filled in (the image values
    hold none, and are not masked: a short password `app` would turn `team/app` into `***`), and so have
    the CI trailers (CIInfo.trailers): the commit is pushed for good."""
    lines = []
    template = output.redact(template) if template is not None else None
    uses_old = template is not None and "old" in {f for _, f, _, _ in string.Formatter().parse(template)}
    olds = _old_values(images, edits) if uses_old else {}  # {old}: each edited file parsed again, once
    for image in images:
        if template is None:
            lines.append(f"Update {image.name} image to {image}")
        else:
            lines.append(template.format(
                image=str(image), repository=image.name, tag=image.tag or "", digest=image.digest or "",
                old=", ".join(olds.get(image.normalized_name, ())),
            ))
    if len(lines) == 1:
        body = lines[0]
    else:
        body = f"Update {len(images)} images\n\n" + "\n".join(lines)
    trailers = [("Image", str(i)) for i in images] + info.trailers() + list(extra)
    return body.rstrip() + "\n\n" + "\n".join(f"{k}: {one_line(v)}" for k, v in trailers) + "\n"


def one_line(value: str) -> str:
    """A trailer value on one line: CR/LF (from CI variables, e.g. GITHUB_REPOSITORY) would start a new,
    forged trailer (`Signed-off-by: ...`); each line break and the blanks around it become one space."""
    return " ".join(part.strip() for part in value.splitlines() if part.strip())


# --- the use case -------------------------------------------------------------------------------------


@dataclass
class PreparedBump:
    """A deploy repo ready for `apply`; a context manager that owns (and removes) the clone's temp dir.

    For a remote: `work` is a shallow clone of `branch`.  For a local checkout (remote.local) nothing is
    done ahead: its checks (clean, on a branch, not ahead of origin) and fast-forward happen in apply.
    """

    request: BumpRequest
    remote: deployrepo.Remote
    branch: str | None = None
    work: Path | None = None
    prepared_at: float = field(default_factory=time.monotonic)
    # what the work tree holds (see _selection): set when prepare checked out the files naming the images
    selected: tuple[str, ...] | None = None
    _tmp: TempDir | None = field(default=None, repr=False)

    @property
    def age(self) -> float:
        """Seconds since the clone was made."""
        return time.monotonic() - self.prepared_at

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> PreparedBump:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Notes = list[tuple[str, str]]  # (output function name: "step" | "info" | "warn", text), printed later


_NO_CLONE_YET = Path("/nonexistent/gitops-clone")  # where no absolute --path can be inside


def reach(request: BumpRequest, environ: Mapping[str, str] | None = None,
          images_required: bool = True) -> deployrepo.Remote:
    """Validate the request and classify --deploy-repo: UsageError (exit 2) on bad input.  No network,
    except one ls-remote for a local checkout that looks ahead of origin as last fetched (see
    check_local_checkout), or for the --dry-run of a bump that commits in one (check_dry_run_checkout)."""
    validate(request, images_required)
    remote = deployrepo.open_remote(request.deploy_repo, ssh_key=request.ssh_key, environ=environ,
                                    names=request.names)
    if remote.local is None:  # a clone: a path outside it is known now, before any work (a publish)
        from gitops_cli.yamledit.discover import relative_subpath

        for path in request.paths:
            relative_subpath(_NO_CLONE_YET, path, request.names)
    if remote.local is None and not request.commit:  # the value as given (a bare repo's path is shown as a URL)
        what = "a URL" if deployrepo.is_url(request.deploy_repo) else "a bare repository"
        raise UsageError(f"{request.names('deploy_repo', request.deploy_repo)}: --no-commit needs a local "
                         f"checkout (a path), not {what}",
                         hint="use --dry-run to preview a bump of a remote repository")
    if remote.local is not None and request.commit and not request.dry_run:  # exit 4 before any work
        root = local_scope(remote.local, request)[0]
        with checkout_lock(root, request.lock_wait, request.names):  # not in the middle of another run's bump
            check_local_checkout(root, request, environ=environ)
    elif remote.local is not None and request.commit:  # its --dry-run: refused as it would be
        root = local_scope(remote.local, request)[0]
        if git.work_tree_top(root) is not None:  # a plain directory: a dry run needs no git
            check_dry_run_checkout(root, request, environ=environ)
    return remote


def prepare(
    request: BumpRequest,
    environ: Mapping[str, str] | None = None,
    *,
    remote: deployrepo.Remote | None = None,
    notes: Notes | None = None,
    cancel: threading.Event | None = None,
    select_for: Sequence[ImageRef] = (),
) -> PreparedBump:
    """Reach the deploy repo and, for a remote, shallow-clone its branch into a temp dir.

    The images may be missing (given to apply).  `remote`: from an earlier `reach` (not repeated).
    `notes`: progress lines are appended there instead of printed (a background thread must not
    interleave its lines with the caller's).  `cancel`: when set, a running ls-remote/clone is
    terminated (GitError "cancelled").  `select_for`: the images apply will be given, known here by
    name only (build-and-bump, before the tag exists): the files naming them are checked out now (the
    blob fetch, `git grep` and sparse checkout run here, in the caller's background thread), and apply
    does not redo it unless the clone moved or its images name other files.
    The temp dir is removed when this raises, else by PreparedBump.close() / the with block.
    """
    remote = remote or reach(request, environ, images_required=False)
    say = _say(notes)
    if remote.auth:
        say("info", f"Authenticating to {remote.display} with {remote.auth}")
    if remote.local is not None:
        return PreparedBump(request, remote)
    tmp = TempDir("bump")
    try:
        work = tmp.path / "deploy"
        cloning = f"Cloning {remote.display} ({request.branch or 'its default branch'})"
        say("step", cloning)
        # a spinner on a terminal, unless this runs in a background thread (notes are kept for later)
        with output.status(cloning) if notes is None else nullcontext():
            branch = deployrepo.clone(remote, work, request.branch, cancel=cancel, checkout=False)
            selected = None
            if select_for:
                target = replace(request, images=list(select_for))
                selected = _check_out_candidates(work, target, remote, cancel=cancel)
                if request.paths:  # laid out as a full checkout has it (_selection): checked now, as apply would
                    check_paths(work, request)
    except BaseException:
        tmp.cleanup()
        raise
    return PreparedBump(request, remote, branch, work, selected=selected, _tmp=tmp)


def _say(notes: Notes | None) -> Callable[[str, str], None]:
    def say(kind: str, text: str) -> None:
        if notes is None:
            getattr(output, kind)(text)
        else:
            notes.append((kind, text))

    return say


def apply(
    prepared: PreparedBump,
    images: Sequence[ImageRef] | None = None,
    *,
    resolve_digest: DigestResolver | None = None,
    environ: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    refresh: bool = False,
    guard: Guard | None = None,
    landed: Landed | None = None,
) -> BumpResult:
    """Compute the edits, write, commit and push (re-apply and retry on a moved remote).

    `images` replaces the request's (build-and-bump knows them only now).  `refresh`: first check the
    remote branch (one ls-remote) and fast-forward the clone when it moved since `prepare` (an old
    clone would otherwise cost a rejected push and a backoff).  `guard`: see Guard; when it gives a
    reason, nothing is committed and the result's `superseded` says why.  `landed`: see Landed.
    An interrupt during the push is PushInterrupted (see _push).
    """
    request = prepared.request if images is None else replace(prepared.request, images=list(images))
    _validate_images(request.images)
    if prepared.remote.local is not None:
        return _bump_local(request, prepared.remote, resolve_digest, environ, sleep, guard, landed)
    if prepared.work is None or prepared.branch is None or prepared._tmp is None:
        raise GitError(f"{prepared.remote.display}: the prepared clone was already removed")
    if refresh and _fast_forward(prepared):
        prepared.selected = None  # a new HEAD: its files are selected again
    if request.push_branch and request.push_branch != prepared.branch and _onto_push_branch(prepared,
                                                                                             request.push_branch):
        prepared.selected = None
    return _apply_commit_push(request, prepared.remote, prepared.work, prepared.branch, resolve_digest,
                              environ, sleep, select=True, selected=prepared.selected == _selection(request),
                              guard=guard, landed=landed)


def _onto_push_branch(prepared: PreparedBump, push_branch: str) -> bool:
    """A --push-branch the remote has already: the bump applies on its head (a re-run is then "already
    up to date", a new bump stacks on it), not on the base branch's, which would cost a rejected push.
    True when the clone moved there; a new push branch starts from the base branch."""
    assert prepared.work is not None
    there = deployrepo.remote_head(prepared.remote, push_branch)
    if there is None:
        return False
    if there == deployrepo.head(prepared.work):  # the clone is there: where the push expects it (its lease)
        git.run(["update-ref", f"refs/remotes/origin/{push_branch}", there], cwd=prepared.work)
        return False
    output.info(f"{prepared.remote.display} has {push_branch} already: applying the bump on its head {there[:12]}")
    deployrepo.fetch_reset(prepared.work, prepared.remote, push_branch)
    return True


def _fast_forward(prepared: PreparedBump) -> bool:
    """Fetch and reset the clone when the remote branch moved; True when it did."""
    assert prepared.work is not None and prepared.branch is not None
    now = deployrepo.remote_head(prepared.remote, prepared.branch)
    if now is not None and now != deployrepo.head(prepared.work):
        output.info(f"{prepared.remote.display} ({prepared.branch}) moved since the clone: fetching {now[:12]}")
        deployrepo.fetch_reset(prepared.work, prepared.remote, prepared.branch)
        return True
    return False


def bump(
    request: BumpRequest,
    *,
    resolve_digest: DigestResolver | None = None,
    environ: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    landed: Landed | None = None,
) -> BumpResult:
    """Run one bump (prepare + apply); see the module docstring.  Raises GitopsError subclasses, and
    PushInterrupted for an interrupt during the push (`landed`: see Landed)."""
    remote = reach(request, environ)  # the images too: exit 2 before any clone
    with prepare(request, environ, remote=remote) as prepared:
        return apply(prepared, resolve_digest=resolve_digest, environ=environ, sleep=sleep, landed=landed)


def _bump_local(
    request: BumpRequest, remote: deployrepo.Remote, resolve_digest: DigestResolver | None,
    environ: Mapping[str, str] | None, sleep: Callable[[float], None], guard: Guard | None = None,
    landed: Landed | None = None,
) -> BumpResult:
    assert remote.local is not None
    root, scoped = local_scope(remote.local, request)
    return _bump_local_in(root, scoped, remote, resolve_digest, environ, sleep, guard, landed)


def _bump_local_in(
    root: Path, request: BumpRequest, remote: deployrepo.Remote, resolve_digest: DigestResolver | None,
    environ: Mapping[str, str] | None, sleep: Callable[[float], None], guard: Guard | None,
    landed: Landed | None,
) -> BumpResult:
    if not request.commit or request.dry_run:
        checkout = git.work_tree_top(root) is not None
        if checkout:
            refuse_submodule_paths(root, request)
            if not request.dry_run:  # --no-commit (a dry run checks in _compute_into)
                refuse_hidden_files(root, request, flagged=False)
        locked = checkout_lock(root, request.lock_wait, request.names) if checkout and not request.dry_run else None
        with locked or nullcontext():
            result = BumpResult(repository=str(root), images=list(request.images), dry_run=request.dry_run)
            _compute_into(result, root, request, resolve_digest, guard,  # a dry run shows what would be committed
                          tracked_only=request.commit and checkout)
            if not request.dry_run:
                write_edits(root, result.edits)
            return result
    with checkout_lock(root, request.lock_wait, request.names):  # edit, commit, push, reset: one run at a time
        return _commit_local(root, request, remote, resolve_digest, environ, sleep, guard, landed)


def _commit_local(
    root: Path, request: BumpRequest, remote: deployrepo.Remote, resolve_digest: DigestResolver | None,
    environ: Mapping[str, str] | None, sleep: Callable[[float], None], guard: Guard | None,
    landed: Landed | None,
) -> BumpResult:
    current = check_local_checkout(root, request, ahead=False, environ=environ)  # the fetch below tells, for sure
    origin = deployrepo.open_checkout_remote(root, current, ssh_key=request.ssh_key, environ=environ)
    if origin is None:  # no remote at all: nothing to push to, commit only
        return _apply_commit_push(request, None, root, current, resolve_digest, environ, sleep, keep=True,
                                  guard=guard)
    start = deployrepo.head(root)
    pushed: list[BumpResult] = []
    [marker] = git.git_paths(root, BUMP_MARKER)
    try:
        marker.write_text(f"{start}\n")  # removed below, however this ends, unless gitops is killed first
    except OSError as exc:  # a full disk (before any edit): exit 74 naming the file, nothing left half-done
        marker.unlink(missing_ok=True)
        if exc.errno in REFUSED_WRITES:
            raise refused_write(exc, marker) from None
        raise

    def on_landed(result: BumpResult) -> None:
        pushed.append(result)
        if landed is not None:
            landed(result)

    try:
        remote_head = deployrepo.fetch_only(root, origin, current, depth1=False)
        if start != remote_head:
            _check_not_ahead(root, current, start, remote_head, origin.name)
            # fast-forward the clean checkout to what was fetched (no second fetch); an untracked (or
            # ignored) file in the way stops it (exit 4)
            deployrepo.reset_to(root, origin, current, remote_head, keep=True)
        return _apply_commit_push(request, origin, root, current, resolve_digest, environ, sleep, keep=True,
                                  guard=guard, landed=on_landed)
    except BaseException as exc:
        if not pushed:  # a bump that went through stays (interrupted afterwards: the checkout is origin's)
            unsure = exc.commit if isinstance(exc, PushInterrupted) and exc.pushed is None else None
            _restore_local(root, start, known=unsure is None, unsure=unsure)
        raise
    finally:
        marker.unlink(missing_ok=True)


# In a local checkout's git dir while a bump runs there (the checkout's HEAD before it): a run killed
# outright (a second SIGTERM, kill -9) leaves it, for the next one to undo what it left (_recover_killed_bump).
BUMP_MARKER = "gitops-bump"


def _recover_killed_bump(root: Path, current: str, request: BumpRequest,
                         environ: Mapping[str, str] | None) -> None:
    """Under the checkout's lock, before a bump of a local checkout: a bump killed outright (no reset: a second
    SIGTERM during its push, kill -9) left its marker (BUMP_MARKER).  Its commit, if origin (the checkout's
    remote: deployrepo.open_checkout_remote) does not have it,
    would stop every later bump (exit 4, ahead of origin): origin's branch is fetched, and a HEAD that is not
    on it, a bump commit (an `Image:` trailer) made on origin's history or on the checkout's HEAD before that
    run, is reset to that HEAD (a warning names both; the commit stays in the reflog).  Anything else (the
    user's own commits since) is left to the usual checks.  The marker is removed once that is settled
    (origin unreachable: it stays, for the next run)."""
    [marker] = git.git_paths(root, BUMP_MARKER)
    try:
        start = marker.read_text().strip()
    except FileNotFoundError:
        return
    head = deployrepo.head(root)
    if head != start and deployrepo.has_commit(root, start):
        try:
            origin = deployrepo.open_checkout_remote(root, current, ssh_key=request.ssh_key, environ=environ)
            there = deployrepo.fetch_only(root, origin, current, depth1=False) if origin is not None else None
        except GitError:
            return
        parent = git.run(["rev-parse", "--verify", "--quiet", "HEAD^"], cwd=root, check=False).stdout.strip()
        trailers = git.run(["log", "-1", "--format=%(trailers:key=Image,valueonly)", "HEAD"], cwd=root).stdout
        if (origin is not None and there is not None and not git.is_ancestor(root, head, there) and parent
                and trailers.strip()
                and (parent == start or git.is_ancestor(root, parent, there))):
            deployrepo.restore(root, start)
            output.warn(f"{root}: reset to {start[:12]}, where it was before an earlier gitops run was killed during "
                        f"its bump: its commit {head[:12]} is not on {origin.name}/{current} (it stays in "
                        "`git reflog`)")
    marker.unlink(missing_ok=True)


_locked: set[Path] = set()  # the lock files this process holds (checkout_lock)


@contextmanager
def checkout_lock(root: Path, wait: float = CHECKOUT_LOCK_WAIT, names: Names = FLAGS) -> Iterator[None]:
    """Hold the lock of the local checkout `root` for the block: bumps and rollbacks of one checkout
    (of its worktrees too) run one at a time, each from its check of the tree through its edit, commit,
    push and any reset after a failure; another run would see, commit, push or reset away its edits.

    An exclusive flock on `<git common dir>/gitops.lock` (filelock.exclusive): held by another process,
    a progress line says so and the lock is waited for, `wait` seconds at most (the lock_wait setting,
    named in messages as `names` does; 0: not at all), then LockedError (exit 16) naming the checkout and
    the holder's pid.  Re-entrant in one process (a rollback holds it around its bump).  A directory that
    is no checkout has nothing to lock: the block runs (the caller's checks name the problem)."""
    res = git.run(["rev-parse", "--git-common-dir", "--git-dir"], cwd=root, check=False, strip=False)
    if res.status != 0 or not res.path().strip():
        yield
        return
    common, own = ((root / p).resolve() for p in res.path_lines())
    path = common / CHECKOUT_LOCK
    if path in _locked:
        yield
        return

    def waiting(holder: str) -> None:
        output.info(f"waiting for another gitops run on {root} ({_pid(holder)}) to finish, {wait:g} s at most")

    with ExitStack() as held:
        try:
            held.enter_context(filelock.exclusive(path, wait=wait, waiting=waiting,
                                                  owner=deployrepo.other_owner(common)))
        except filelock.LockHeld as exc:
            setting = names("lock_wait", wait)  # where a wait other than the default comes from
            if wait <= 0:
                when = f"holds its lock {path} (not waited for: {setting})"
            elif names.sources.get("lock_wait") == "default":
                when = f"still holds its lock {path} after {wait:g} s"
            else:
                when = f"still holds its lock {path} after {wait:g} s ({setting})"
            raise LockedError(f"another gitops run on {root} ({_pid(exc.holder)}) {when}; nothing was changed",
                              hint="bumps and rollbacks of one checkout run one at a time: re-run once it has "
                                   "ended, or wait longer for it with --lock-wait SECONDS (or GITOPS_LOCK_WAIT, "
                                   "lock_wait)") from None
        except OSError as exc:
            if exc.errno in WRITE_FAILURES:
                raise
            raise GitError(f"{root}: cannot open its lock {path}: {exc.strerror}",
                           hint="gitops needs to write in the checkout's git directory") from None
        # root on another user's checkout: what the run creates there is given back to that user, lock held
        held.enter_context(deployrepo.give_back(root, [own, common]))
        _locked.add(path)
        try:
            yield
        finally:
            _locked.discard(path)


def _pid(holder: str) -> str:
    """The holder of a lock as messages name it (filelock.holder: a pid, or "unknown")."""
    return f"pid {holder}" if holder.isdigit() else "its pid not recorded"


def _restore_local(root: Path, start: str, known: bool = True, unsure: str | None = None) -> None:
    """After a failed bump of a local checkout: back to where it was (no unpushed bump commit is left).
    `known`: the bump is known not to be on origin (else an interrupted push left it unknown: `unsure`, its
    commit, which the warning names: it stays in the reflog, and the next bump fast-forwards to it if origin
    has it by then)."""
    try:
        moved = deployrepo.head(root) != start
        # --no-optional-locks: no index refresh, which needs a new index written (a full disk fails it)
        edited = bool(git.run(["--no-optional-locks", "status", "--porcelain=v1", "--untracked-files=no"],
                              cwd=root, what="git status").stdout.strip())
        if moved or edited:
            deployrepo.restore(root, start)
            output.warn(f"{root}: reset to {start[:12]}, where it was before the bump"
                        + (" (the bump was not pushed)" if known else "")
                        + (f"; whether origin has the bump commit {unsure[:12]} is unknown: it stays in `git reflog`, "
                           "and the next bump moves the checkout to it if origin has it by then" if unsure else ""))
    except GitopsError as exc:  # the original error is the one to report
        then = f"free some space there, then `git reset --hard {start[:12]}`" if exc.exit_code == EXIT_WRITE_FAILED \
            else "check it with git status"
        output.warn(f"{root}: could not be reset to {start[:12]} ({exc.message}); {then}")


def local_scope(local: Path, request: BumpRequest) -> tuple[Path, BumpRequest]:
    """The root of a local checkout and the request to run there (see scope_paths): its messages name the
    --path values as given."""
    root, paths = scope_paths(local, request.paths)
    if paths == list(request.paths):
        return root, request
    return root, replace(request, paths=paths, names=request.names.given("paths", paths, request.paths))


def scope_paths(local: Path, paths: Sequence[str]) -> tuple[Path, list[str]]:
    """The root of a local checkout and the --path values to use there: the one rule of every verb
    (bump, history, rollback).  A --deploy-repo below the checkout's top is the implicit --path (every
    relative --path is relative to it; an absolute one is kept as given), for --dry-run, --no-commit and a
    commit alike; files are then reported relative to the top.  A directory that is no git checkout is its
    own root (--dry-run and --no-commit need no git)."""
    res = git.run(["rev-parse", "--show-toplevel"], cwd=local, check=False, strip=False)
    if res.status != 0 or not res.path():
        refused = git.ownership_error(res.stderr, cwd=local)  # another user's checkout: no plain directory
        if refused is not None:
            raise refused
        return local, list(paths)
    root = Path(res.path()).resolve()
    here = local.resolve()
    if here == root:
        return root, list(paths)
    prefix = here.relative_to(root).as_posix()
    scoped = [p if Path(p).is_absolute() else posixpath.normpath(f"{prefix}/{p}") for p in paths]
    return root, scoped or [prefix]


def check_local_checkout(root: Path, request: BumpRequest, *, ahead: bool = True,
                         environ: Mapping[str, str] | None = None, recover: bool = True) -> str:
    """The branch of a local checkout that a bump may commit to: clean (exit 4), on a branch, the one
    --branch names (exit 2).  Called by `reach` (before any work) and again before the commit.
    `ahead`: also refuse (exit 4) a branch with commits that are not on origin's (see _check_ahead_early);
    the bump itself decides that after its fetch instead.  `recover`: settle what a bump killed outright
    left (_recover_killed_bump, under the caller's lock); a dry run, which changes nothing, does not."""
    git.toplevel(root, hint="give a checkout of the deploy repo, or its URL (bump's --no-commit and "
                 "--dry-run also take a plain directory)")
    deployrepo.refuse_operation_in_progress(root)
    refuse_hidden_files(root, request)
    deployrepo.ensure_clean(root)
    current = deployrepo.current_branch(root)
    if current is None:
        raise DirtyTreeError(f"{root}: detached HEAD; check out the branch to commit to")
    if request.branch and request.branch != current:
        raise UsageError(f"{request.names('branch', request.branch)}: the checkout {root} is on {current}",
                         hint="check out that branch first (a local checkout is never switched)")
    if recover:
        _recover_killed_bump(root, current, request, environ)
    if request.push_branch is not None:
        raise UsageError(f"{request.names('push_branch', request.push_branch)}: not with a local checkout "
                         f"({root}), whose branch {current} would be left with a commit that is not on origin",
                         hint="give the deploy repo's URL (it is cloned, and the commit pushed to that branch), "
                              "or commit and push yourself (bump --no-commit)")
    if ahead:  # before any work (the caller's second call, before the commit, opens the remote itself):
        # several remotes, none the branch's upstream (exit 4), or a push URL gitops cannot use (exit 2) now,
        # not after a build-and-bump's build and publish
        remote = deployrepo.open_checkout_remote(root, current, ssh_key=request.ssh_key, environ=environ)
        if remote is not None:
            _check_ahead_early(root, current, remote)
    return current


def check_dry_run_checkout(root: Path, request: BumpRequest, environ: Mapping[str, str] | None = None) -> None:
    """The --dry-run of a bump that commits in the local checkout `root` is refused as the bump would be, with
    the same errors (check_local_checkout: exit 4 for a dirty tree, a detached HEAD, an operation in progress,
    hidden files, a branch ahead of origin's; exit 2 for another --branch or a --push-branch), touching
    nothing: no lock, no fetch, no recovery of a killed bump.  Origin's branch is read with one ls-remote
    (what the bump's fetch would bring): a branch ahead of it, or a fast-forward to it over an untracked
    file, is exit 4 as in the bump; a checkout behind it gets a warning, as the diff is computed on the
    checkout's HEAD, not on the head the bump would first fast-forward to."""
    current = check_local_checkout(root, request, ahead=False, environ=environ, recover=False)
    if git.git_paths(root, BUMP_MARKER)[0].exists():
        output.warn(f"{root}: an earlier gitops run was killed during its bump here (its marker {BUMP_MARKER} is in "
                    "the git directory): the bump settles that first, a dry run does not, so the checkout was not "
                    "compared with origin's branch")
        return
    origin = deployrepo.open_checkout_remote(root, current, ssh_key=request.ssh_key, environ=environ)
    if origin is None:  # committed only: nothing to fetch
        return
    local = deployrepo.head(root)
    where = f"{origin.name}/{current}"
    try:
        now = deployrepo.remote_head(origin, current, repo=root)
    except GitError as exc:
        output.warn(f"{root}: {where} could not be read ({exc.message}): whether the checkout is behind or ahead "
                    f"of it was not checked; the diff is against the checkout's HEAD {local[:12]}")
        return
    if now is None:
        output.warn(f"{root}: {origin.display} has no branch {current}: the bump's fetch of it would fail; the diff is "
                    f"against the checkout's HEAD {local[:12]}")
        return
    if now == local:
        return
    fetched = deployrepo.has_commit(root, now)
    if not fetched or git.is_shallow(root):
        why = ("which a shallow checkout cannot compare with its HEAD" if fetched
               else "which this checkout has not fetched")
        output.warn(f"{root}: {where} is at {now[:12]}, {why}: the bump fetches it first (and stops if the branch "
                    f"is ahead of it); the diff is against the checkout's HEAD {local[:12]}")
        return
    _check_not_ahead(root, current, local, now, origin.name)
    deployrepo.refuse_overwriting(root, local, now, f"{origin.display} ({current})")
    output.warn(f"{root}: branch {current} is behind {where} ({now[:12]}), which the bump fast-forwards to first; "
                f"the diff is against the checkout's HEAD {local[:12]} (`git pull --ff-only`, then re-run, to see "
                "the bump's)")


def refuse_hidden_files(root: Path, request: BumpRequest, flagged: bool = True) -> None:
    """DirtyTreeError (exit 4), touching nothing, when tracked YAML files (kustomize's `Kustomization` too) in
    the bump's scope (its --path values, else the whole checkout) are hidden from it by the index: left out
    of a sparse checkout (not on disk: the bump would edit the others and push a partial bump -- a
    kustomization's `newTag:` left out still deploys the old image), or, when `flagged`, marked
    skip-worktree or assume-unchanged (`git add` refuses a skip-worktree file, and `git reset --hard` never
    puts it back; assume-unchanged would be cleared in silence).  The flags are read as `gitops tag` reads
    them (one `git ls-files -v`).  `flagged` False (--no-commit, which commits nothing): only the files
    left out."""
    from gitops_cli.tagging import _index_entries, listed_paths, sparse_left_out
    from gitops_cli.yamledit.discover import relative_subpath

    scope = [relative_subpath(root, p, request.names).as_posix() for p in request.paths]
    hidden = [(tag, mode, path) for tag, mode, path in _index_entries(root)
              if (tag == "S" or tag.islower()) and kustomize.is_yaml_name(path)
              and (not scope or any(s == "." or path == s or path.startswith(f"{s}/") for s in scope))]
    if not hidden:
        return
    left_out = sparse_left_out(root, hidden)
    if left_out:
        raise DirtyTreeError(f"{root}: its sparse checkout leaves out {len(left_out)} tracked YAML file(s) in "
                             f"the bump's scope ({listed_paths(left_out)}): the bump would edit only the others; "
                             "nothing was changed",
                             hint="`git sparse-checkout disable` (or add them to it), or give the deploy repo's URL "
                                  "(gitops clones it)")
    if flagged:
        paths = [path for _, _, path in hidden]
        raise DirtyTreeError(f"{root}: {len(paths)} file(s) in the bump's scope are marked skip-worktree or "
                             f"assume-unchanged in the index ({listed_paths(paths)}), whose edits git would not "
                             "commit as it should; nothing was changed",
                             hint="`git update-index --no-skip-worktree --no-assume-unchanged FILE...` (`git "
                                  "ls-files -v` shows them: S, or a lowercase letter), then re-run")


def _check_ahead_early(root: Path, current: str, origin: deployrepo.Remote) -> None:
    """Before any work: DirtyTreeError (exit 4) when the branch surely has commits that are not on origin's.
    refs/remotes/origin/<branch> as last fetched (no network) may be stale -- a push by URL, or a bump by an
    earlier version, never moved it -- so an "ahead" there is only provisional: one `git ls-remote` of
    origin's branch confirms it.  Origin's head equal to HEAD, or known here with HEAD an ancestor of it:
    not ahead.  Known here and not a descendant of HEAD: ahead.  Unknown here (origin moved on), or origin
    unreachable: the check after the bump's fetch decides."""
    name = origin.name
    tracking = deployrepo.tracking_head(root, current, name)
    if tracking is None:
        return
    local = deployrepo.head(root)
    if local == tracking or git.is_ancestor(root, local, tracking) or git.is_shallow(root):
        return  # a shallow checkout: the link may lie beyond its boundary
    try:
        now = deployrepo.remote_head(origin, current, repo=root)
    except GitError:
        return  # not reachable now: the bump's own fetch reports it
    if now is None or now == local or not deployrepo.has_commit(root, now):
        return
    _check_not_ahead(root, current, local, now, name)


def _check_not_ahead(root: Path, current: str, local: str, remote_head: str, name: str) -> None:
    """DirtyTreeError (exit 4) when the checkout's branch has commits that are not on its remote's (`name`;
    `remote_head`, as fetched or read by ls-remote)."""
    if local == remote_head or git.is_ancestor(root, local, remote_head):
        return
    raise DirtyTreeError(f"{root}: branch {current} has commits that are not on {name}/{current}",
                         hint=f"see them with `git fetch {name} && git log {name}/{current}..{current}`; push or "
                              "drop them first: a bump commit must go on top of the remote branch")


def check_paths(work: Path, request: BumpRequest) -> None:
    """UsageError (exit 2) for a --path that the clone `work` (its tree checked out) does not have, or has
    as a submodule, a symlink or a nested repository: what apply refuses, known as soon as the clone is
    made (build-and-bump's background clone: before anything is pushed)."""
    from gitops_cli.yamledit.discover import check_subpaths

    refuse_submodule_paths(work, request)
    check_subpaths(work, request.paths, request.names)


def check_local_paths(local: Path, request: BumpRequest) -> None:
    """check_paths for a local --deploy-repo, before any work (build-and-bump: not after the push): a --path
    the checkout's tree does not have is accepted only when origin's branch as last fetched has it (a bump
    that commits fast-forwards to origin first)."""
    from gitops_cli.yamledit.discover import check_subpaths, relative_subpath

    root, request = local_scope(local, request)
    branch = deployrepo.current_branch(root) if request.commit and not request.dry_run else None
    try:
        name = deployrepo.checkout_remote(root, branch) if branch else None
    except DirtyTreeError:  # which remote is not known: reach refuses the checkout
        name = None
    tracking = deployrepo.tracking_head(root, branch, name) if branch and name else None
    for raw in request.paths:
        rel = relative_subpath(root, raw, request.names)
        if tracking is not None and not (root / rel).exists() and git.run(
                ["cat-file", "-e", f"{tracking}:{rel.as_posix()}"], cwd=root, check=False).status == 0:
            continue
        check_subpaths(root, [raw], request.names)


def refuse_submodule_paths(root: Path, request: BumpRequest) -> None:
    """UsageError (exit 2) for a --path that is, or lies in, a submodule of the repository at `root` (its
    HEAD): another repository, whose files are not this one's -- an uninitialised one (a clone's) is an
    empty directory, where the bump would find nothing."""
    from gitops_cli.yamledit.discover import relative_subpath

    for raw in request.paths:
        refuse_submodule_path(root, relative_subpath(root, raw, request.names).as_posix(),
                              request.names("paths", raw), hint="bump that repository on its own")


def refuse_submodule_path(repo: Path, rel: str, what: str, hint: str, rev: str = "HEAD") -> None:
    """UsageError (exit 2, naming the path as `what`, with `hint`) when the repo-relative `rel` is, or lies in,
    a submodule of `rev`'s tree (bump, history and rollback alike)."""
    sub = deployrepo.submodule_of(repo, rel, rev) if rel != "." else None
    if sub is not None:
        raise UsageError(f"{what}: " + ("a submodule" if sub == rel else f"inside the submodule {sub}")
                         + " (another repository, whose files are not this one's)", hint=hint)


def _compute_into(result: BumpResult, root: Path, request: BumpRequest,
                  resolve_digest: DigestResolver | None, guard: Guard | None = None,
                  tracked_only: bool = False) -> None:
    """`tracked_only`: `root` is a user's checkout the bump commits in: files git does not track
    (untracked or ignored) are not edited, and files its index hides from it are refused (again after
    each fetch that moved it: refuse_hidden_files)."""
    if tracked_only:
        refuse_hidden_files(root, request)
    edits, skipped, found = _edits_in(root, request, resolve_digest, tracked_only)
    for warning in skipped:
        if warning not in result.skipped:
            output.warn(warning)
    result.skipped = skipped
    if len(found) < len({i.normalized_name for i in request.images}):
        raise _not_found(request.images, found, result.repository, request.paths, request.container,
                         request.names, skipped)
    result.superseded = guard(edits) if guard is not None else None  # also with no edits (see Guard)
    result.edits = [] if result.superseded else edits


def _edits_in(root: Path, request: BumpRequest, resolve_digest: DigestResolver | None,
              tracked_only: bool) -> tuple[list[FileEdit], list[str], set[str]]:
    """compute_edits for the request in `root`; `tracked_only`: see _compute_into."""
    tracked = deployrepo.tracked_files(root) if tracked_only else None
    filtered = (deployrepo.filtered_files(root, sorted(p for p in tracked if kustomize.is_yaml_name(p)))
                if tracked is not None else None)
    return compute_edits(root, request.images, request.paths, request.container, resolve_digest, tracked,
                         request.names, filtered, request.select)


def local_edits(local: Path, request: BumpRequest, image: ImageRef,
                resolve_digest: DigestResolver | None = None) -> list[FileEdit]:
    """The edits a bump of the local checkout `local` to `image` would make in its work tree as it is now,
    before the bump's fetch moves it to origin's head; nothing is written.  A rollback computes them for
    what the request's `select` (rollback.Undo) sees on the way: its guard's baseline."""
    root, scoped = local_scope(local, replace(request, images=[image]))
    edits, _, _ = _edits_in(root, scoped, resolve_digest, tracked_only=True)
    return edits


def prepared_edits(prepared: PreparedBump, image: ImageRef,
                   resolve_digest: DigestResolver | None = None) -> list[FileEdit]:
    """The edits a bump of `image` would make on the tree `prepare` gave, as it is now; nothing is written: a
    local checkout's work tree before the bump's fetch moves it to origin's head (local_edits), a clone's
    branch as cloned (its files naming the image are checked out now, and apply does not check them out
    again).  A rollback computes them on the tree it read the history from, for what its `select`
    (rollback.Undo) sees there, before it writes anything."""
    request = replace(prepared.request, images=[image])
    if prepared.remote.local is not None:
        return local_edits(prepared.remote.local, request, image, resolve_digest)
    if prepared.work is None:
        raise GitError(f"{prepared.remote.display}: the prepared clone was already removed")
    if prepared.selected != _selection(request):
        prepared.selected = _check_out_candidates(prepared.work, request, prepared.remote)
    refuse_submodule_paths(prepared.work, request)
    edits, _, _ = _edits_in(prepared.work, request, resolve_digest, tracked_only=False)
    return edits


def _apply_commit_push(
    request: BumpRequest, remote: deployrepo.Remote | None, work: Path, branch: str,
    resolve_digest: DigestResolver | None, environ: Mapping[str, str] | None, sleep: Callable[[float], None],
    select: bool = False, selected: bool = False, keep: bool = False, guard: Guard | None = None,
    landed: Landed | None = None,
) -> BumpResult:
    """`select`: `work` is this bump's own `--no-checkout` clone: check out only the files that can mention
    the images (see _selection), again after each fetch.
    `selected`: that first selection was already made (by prepare, for these images, on this HEAD).
    `keep`: `work` is a user's checkout: a reset to a moved remote never overwrites untracked files, and
    files git does not track are not edited."""
    target = request.push_branch or branch
    display = remote.display if remote is not None else str(work)
    result = BumpResult(repository=display, images=list(request.images), branch=branch,
                        push_branch=target if remote is not None else None, dry_run=request.dry_run)
    resolver = _cached(resolve_digest)
    if select and not selected:
        _check_out_candidates(work, request, remote)
    refuse_submodule_paths(work, request)
    _compute_into(result, work, request, resolver, guard, tracked_only=keep)
    if request.dry_run or result.up_to_date or result.superseded:
        return result
    identity = deployrepo.resolve_identity(request.author, work, environ)
    info = ci.detect(environ)
    unmoved = False  # the last rejected push left the remote branch where it was
    for attempt in range(1, request.retries + 2):
        write_edits(work, result.edits)
        message = render_message(request.images, result.edits, request.message, info, request.trailers)
        result.commit = deployrepo.commit(work, [e.path for e in result.edits], message, identity, environ)
        if remote is None:
            return result
        result.attempts = attempt
        output.step(f"Pushing {result.commit[:12]} to {remote.display} ({target})")
        outcome = _push(work, remote, target, result, landed)
        if outcome.ok:
            return result
        if attempt > request.retries:
            break
        base = git.run(["rev-parse", "HEAD^"], cwd=work).stdout.strip()  # the head the bump was made on
        delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt))
        output.info(f"push rejected ({outcome.reason}): re-applying on the remote's new head in {delay:.1f}s "
                    f"(retry {attempt}/{request.retries})")
        sleep(delay)
        if deployrepo.fetch_reset(work, remote, target, keep=keep) != base:
            unmoved = False
        elif unmoved:  # twice: the server cannot update the branch, whoever pushes
            raise _not_a_race(display, target, outcome)
        else:  # no other push landed (yet: a ref-update race's winner may still be finishing): once more
            unmoved = True
            output.info(f"{display} ({target}) is still at {base[:12]}: pushing once more before taking the "
                        "rejection for the server's own failure")
        result.commit = None
        if select:
            _check_out_candidates(work, request, remote)
        _compute_into(result, work, request, resolver, guard, tracked_only=keep)
        if result.superseded:
            return result
        if result.up_to_date:
            output.info("the remote already has this bump")
            return result
    raise PushRetriesExhaustedError(
        f"push to {display} ({target}) still rejected after {request.retries} retries: "
        "the remote kept moving",
        hint="re-run the bump, or raise --retries",
    )


def _not_a_race(display: str, target: str, outcome: deployrepo.PushOutcome) -> GitError:
    """Exit 10: a push the remote rejected as if another push had won (`failed to update ref`, `cannot
    lock ref`) while its branch did not move: the server cannot update it (a stale lock file, a full
    disk), and retrying would not help.  The hint quotes the server's own lines."""
    return GitError(f"push to {display} ({target}) refused: {outcome.reason}, though {target} did not move: "
                    "no other push won, the server failed to update the branch; not retried further",
                    hint=f"the remote says: {outcome.said}" if outcome.said else
                    "ask the server's administrator (a stale lock file in the repository?)")


class PushInterrupted(interrupts.Interrupted):
    """An interrupt (Ctrl-C, SIGTERM) during a bump's push of `commit`: `pushed` True (the remote has the
    commit), False (it has not), None (unknown: stopped, and the remote could not tell, or its server may
    still apply it); `detail` says which."""

    def __init__(self, detail: str, pushed: bool | None, commit: str | None = None) -> None:
        super().__init__(detail)
        self.pushed = pushed
        self.commit = commit


def _push(work: Path, remote: deployrepo.Remote, target: str, result: BumpResult,
          landed: Landed | None) -> deployrepo.PushOutcome:
    """One push, which an interrupt does not cut short: inside interrupts.held, git push gets its grace
    to finish, and the outcome is known (see deployrepo.push) before PushInterrupted is raised.  A push
    that went through sets `result.pushed` and calls `landed`, both inside the section."""
    outcome: deployrepo.PushOutcome | None = None
    failure: GitopsError | None = None
    try:
        with interrupts.held() as stopping:
            try:
                outcome = deployrepo.push(work, remote, target, stopping=stopping)
            except GitopsError as exc:
                failure = exc
                raise
            if outcome.ok:
                result.pushed = True
                if landed is not None:
                    landed(result)
    except KeyboardInterrupt:  # raised as the section ends: what the push did is known by now
        raise _push_interrupted(result, outcome, failure, f"{remote.display} ({target})") from None
    return outcome


def _push_interrupted(result: BumpResult, outcome: deployrepo.PushOutcome | None, failure: GitopsError | None,
                      where: str) -> PushInterrupted:
    sha = (result.commit or "")[:12]
    if outcome is None:  # the push failed (then came the interrupt)
        reason = failure.message if failure is not None else "the push did not finish"
        return PushInterrupted(f"{sha} was not pushed ({reason})", pushed=False)
    if outcome.ok:
        return PushInterrupted(f"{sha} was pushed to {where} before it stopped", pushed=True)
    if not outcome.stopped:  # rejected: the remote moved; not retried
        return PushInterrupted(f"{sha} was not pushed ({where} moved: {outcome.reason}; not retried)",
                               pushed=False)
    waited = f"the push of {sha} was stopped after {deployrepo.PUSH_GRACE:g} s"
    if outcome.pending:
        return PushInterrupted(f"{waited}; {outcome.reason}", pushed=None, commit=result.commit)
    if outcome.unknown:
        return PushInterrupted(f"{waited}; whether it reached {where} is unknown ({outcome.reason})", pushed=None,
                               commit=result.commit)
    return PushInterrupted(f"{waited}; {outcome.reason}", pushed=False)


def _selection(request: BumpRequest) -> tuple[str, ...]:
    """What _check_out_candidates puts in the work tree for this request: the files holding one of these
    needles, the images' last path components; with --path, those below it, and also those that mention a tag
    or a digest, which compute_edits reads for its warnings (an `image:` map that names no repository).
    `()` (no image yet): every file."""
    from gitops_cli.yamledit import needles_for

    needles = tuple(needles_for(list(request.images)))
    return (*needles, *(n for n in ("tag", "digest") if n not in needles)) if needles and request.paths else needles


def _check_out_candidates(work: Path, request: BumpRequest, remote: deployrepo.Remote | None,
                          cancel: threading.Event | None = None) -> tuple[str, ...]:
    """Check out the files of _selection (with --path, below it, laid out as a full checkout lays it out for
    its checks: see deployrepo.check_out_matching); with --container, also the files of the kustomizations
    among them (_check_out_closures)."""
    from gitops_cli.yamledit import needles_for
    from gitops_cli.yamledit.discover import YAML_ENDINGS, relative_subpath

    selection = _selection(request)
    env = remote.env if remote else None
    paths = [relative_subpath(work, path, request.names).as_posix() for path in request.paths]
    deployrepo.check_out_matching(work, list(selection) or None, YAML_ENDINGS, env=env, cancel=cancel, paths=paths)
    if selection and request.container is not None:
        _check_out_closures(work, needles_for(list(request.images)), env, cancel)
    return selection


def _check_out_closures(work: Path, needles: Sequence[str], env: Mapping[str, str] | None,
                        cancel: threading.Event | None) -> None:
    """With --container: add to the selection the files the kustomizations in it render (_kustomize_closure),
    which a kustomize entry's `name` may reach though they do not name a target: every kustomization file
    of the tree first (the directories they name then resolve), then the other files they name."""
    from gitops_cli.yamledit import read_text

    tree = deployrepo.tracked_files(work)
    found = sorted(p for p in tree if posixpath.basename(p) in kustomize.KUSTOMIZATION_FILES)
    tops = []
    for rel in found:  # the ones selected (naming a target) are on disk
        try:
            if any(n in read_text(work / rel) for n in needles):
                tops.append(Path(rel).parent)
        except (OSError, UnicodeDecodeError):
            continue
    if not tops:
        return
    deployrepo.add_to_checkout(work, found, env=env, cancel=cancel)
    wanted: set[str] = set()
    for top in tops:
        for entry in kustomize.walk(work, top, partial(_kustomization, work, [])):
            if entry.kind is None and entry.path is not None and entry.path.as_posix() in tree:
                wanted.add(entry.path.as_posix())
    deployrepo.add_to_checkout(work, sorted(wanted), env=env, cancel=cancel)


def _cached(resolve: DigestResolver | None) -> DigestResolver | None:
    """Resolve each image's digest once per bump, even across push retries."""
    if resolve is None:
        return None
    cache: dict[str, str] = {}

    def cached(target: ImageRef, reference: Any) -> str:
        key = str(target)
        if key not in cache:
            cache[key] = resolve(target, reference)
        return cache[key]

    return cached


# --- rendering ------------------------------------------------------------------------------------------


def unified_diff(edits: Sequence[FileEdit]) -> str:
    """A git-style unified diff of the edits (a/ b/ prefixes; '\\ No newline at end of file' kept); a file
    name with a control character, `"` or `\\` is quoted as git quotes it, so that the diff stays a patch
    (`git apply` takes it) and sends no escape sequence to a terminal."""
    out: list[str] = []
    for e in edits:
        old, new = output.quoted_path(f"a/{e.path}"), output.quoted_path(f"b/{e.path}")
        out.append(f"diff --git {old} {new}\n")
        for line in difflib.unified_diff(e.old.splitlines(True), e.new.splitlines(True), old, new):
            if line.endswith("\n"):
                out.append(line)
            else:
                out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)
