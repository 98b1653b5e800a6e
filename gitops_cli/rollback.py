"""Roll an image back to an earlier value, through the same byte-exact bump, commit and push path.

    rollback(RollbackRequest(...)) -> RollbackResult

The target is `--to TAG` or the value `--steps N` changes ago in the image's history (gitops_cli.history).
Before anything is written the target tag is checked to still exist in the registry (unless
verify=False); references pinned by digest get the digest recorded in history, so a tag that was moved
since is not followed by surprise, and references with no digest, which can only follow the tag, are not
rolled back to a moved tag (settle_digest).  Like `git revert`, it changes only what the change rolled back
set (see Undo): other environments and containers are left as they are; when that is nothing, though the
target is another value, it is refused (nothing_to_roll_back), not "already up to date".  The commit is
`Roll back <repository> to <tag>` with a `Rollback-Of: <commit>` trailer naming the commit that set the value
being rolled back.  A push that loses to another push is re-applied on the new head only while the image is
still where the rollback found it (unchanged_since: else exit 12); a local checkout is read and rolled back
under its lock (bump.checkout_lock).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gitops_cli import output
from gitops_cli.bump import (
    CHECKOUT_LOCK_WAIT,
    BumpRequest,
    BumpResult,
    FileEdit,
    Guard,
    apply,
    checkout_lock,
    local_scope,
    prepare,
    prepared_edits,
    reach,
)
from gitops_cli.errors import NotFoundError, RefusedError, RemoteMovedError, UsageError
from gitops_cli.history import (
    SHALLOW_HINT,
    HistoryEntry,
    HistoryRequest,
    history_in_clone,
    read_history,
    shallow_cut,
    split_value,
    value_text,
)
from gitops_cli.imageref import ImageRef, try_parse, validate_tag
from gitops_cli.settings import FLAGS, Names

HISTORY_SEARCH_LIMIT = 500  # --to TAG: how many past changes are searched for a recorded digest


@dataclass(frozen=True)
class RollbackRequest:
    deploy_repo: str
    image: ImageRef  # repository only
    to: str | None = None
    steps: int = 1
    branch: str | None = None
    paths: Sequence[str] = ()
    container: str | None = None
    dry_run: bool = False
    verify: bool = True
    author: str | None = None
    push_branch: str | None = None
    retries: int = 10
    lock_wait: float = CHECKOUT_LOCK_WAIT  # see BumpRequest
    ssh_key: Path | None = None
    names: Names = FLAGS  # how messages name a setting's value (its source)


@dataclass
class RollbackResult:
    bump: BumpResult
    target: ImageRef
    current: HistoryEntry
    recorded: HistoryEntry | None  # the history entry the target comes from (None: --to a tag not in history)


# (image with tag, and digest when recorded) -> digest the registry has, or None when the tag is gone
TagChecker = Callable[[ImageRef], "str | None"]


def check_choice(to: str | None, steps: int) -> None:
    """UsageError (exit 2) for a --to that is no valid tag or --steps below 1 (no history needed)."""
    if to is not None:
        validate_tag(to)
    elif steps < 1:
        raise UsageError(f"--steps {steps}: must be 1 or more")


class SeveralValuesError(NotFoundError):
    """Exit 3: the value to roll back from, or to, is several values (containers at different tags): which
    one is meant is not guessed."""


def choose_target(image: ImageRef, entries: list[HistoryEntry], to: str | None,
                  steps: int) -> tuple[ImageRef, HistoryEntry | None]:
    """The reference to roll back to, and the history entry it was recorded in."""
    check_choice(to, steps)
    if entries and entries[0].several:  # every reference would be set to one value
        raise SeveralValuesError(
            f"{image.name} was last set to several values ({entries[0].value}, commit {entries[0].commit[:12]}): "
            "a rollback would set them all to one",
            hint=_CHOOSE_ONE)
    if to is not None:
        for entry in entries:
            for value in entry.values:
                tag, digest = split_value(value)
                if tag == to:
                    return _ref(image, tag, digest), entry
        return image.with_tag(to), None
    # consecutive entries at one value (set in one overlay, then in another) are one change; earlier entries
    # at the current value (set again, or by hand in another file) are no step back
    changes: list[HistoryEntry] = []
    for entry in entries:
        if not changes or not _same_value(entry, changes[-1]):
            changes.append(entry)
    earlier = [e for e in changes[1:] if not _same_value(e, changes[0])]
    if len(earlier) < steps:
        raise NotFoundError(
            f"{image.name} has {len(earlier)} recorded earlier value(s) to go back to; cannot go back {steps}",
            hint="see `gitops history`, or roll back to a tag with --to",
        )
    entry = earlier[steps - 1]
    if entry.several:
        raise SeveralValuesError(
            f"{image.name}: the value {steps} change(s) ago is several values ({entry.value}, commit "
            f"{entry.commit[:12]}); which one to go back to is not guessed",
            hint=_CHOOSE_ONE + ", or roll back to a tag with --to")
    if not entry.tag:
        raise NotFoundError(f"{image.name}: the value {steps} change(s) ago {_untagged(image, entry)} (commit "
                            f"{entry.commit[:12]})", hint="roll back to a tag with --to")
    return _ref(image, entry.tag, entry.digest), entry


_CHOOSE_ONE = "choose one container with --container, or one environment with --path"


def _untagged(image: ImageRef, entry: HistoryEntry) -> str:
    """What a value with no tag is, for a message: an image written without tag or digest, or pinned by a digest
    written by hand (whose tag no `Image:` trailer names)."""
    if entry.digest:
        return f"is pinned by digest only ({image.name}@{entry.digest}), with no tag recorded to go back to"
    return f"is the image without a tag (`{image.name}`: whatever its `latest` names), no tag to go back to"


def _same_value(a: HistoryEntry, b: HistoryEntry) -> bool:
    """The same tag, and the same digest where both record one; several values: the same ones."""
    if a.several or b.several:
        return a.values == b.values
    return a.tag == b.tag and (a.digest == b.digest or a.digest is None or b.digest is None)


class Undo:
    """Which references a rollback changes, as `git revert` touches only what the reverted commit changed:
    those at the value it rolls back from (the newest entry's: its tag, and its digest where both record
    one) in the files the change set it in (those of the newest entries at that value: one change, set file
    by file).  An environment at another value is left as it is, and so is a reference at that value in
    another file (one the change did not set: it is noted in `left`, to be told).

    On the way it records (take) the value of every reference of the image it is asked about in those
    files, changed or not: the guard (unchanged_since) looks for one it does not change, a `v3` landed over
    the `v2` rolled back.  That is no old value of the bump (bump.old_values: the values of the references
    its edits change, for `{old}`), which never holds such a reference."""

    def __init__(self, entries: Sequence[HistoryEntry]) -> None:
        current = entries[0]
        self.tag, self.digest = current.tag, current.digest
        self.files: set[str] = set()
        self.set_in: set[str] = set()  # the files of the change at their paths in its commits, for messages
        for entry in entries:
            if not _same_value(entry, current):
                break
            self.files.update(entry.files)
            self.set_in.update(entry.commit_files or entry.files)
        self.left: dict[tuple[str, int], str] = {}  # (file, line) -> value, at the value but not changed
        # (file, line) -> value as written: every reference of the image it was asked about, and those it changes
        self.found: dict[tuple[str, int], str] = {}
        self.chosen: dict[tuple[str, int], str] = {}
        # the values of the image's references in those files, as read since the last take(): the guard
        # (unchanged_since) compares them between two computations of the edits
        self._seen: set[tuple[str | None, str | None]] = set()

    def take(self) -> set[tuple[str | None, str | None]]:
        seen, self._seen = self._seen, set()
        return seen

    def __call__(self, path: str, ref: Any) -> bool:
        written = try_parse(ref.value) if ref.value else None
        if written is None:
            return False
        if path in self.files:
            self._seen.add((written.tag, written.digest))
        self.found[(path, ref.line)] = ref.value
        if not _pinned_at(written, self.tag, self.digest):
            return False
        if path not in self.files:
            self.left[(path, ref.line)] = ref.value
            return False
        self.chosen[(path, ref.line)] = ref.value
        return True


def _ref(image: ImageRef, tag: str | None, digest: str | None) -> ImageRef:
    return image.repository_only().with_tag(tag).with_digest(digest)


def verify_target(target: ImageRef, check: TagChecker, unrecorded: str | None = None) -> str:
    """The digest the target tag names in the registry now; RefusedError (exit 6) when the registry no longer
    has the tag.  Whether a tag moved since its recorded digest was deployed is for settle_digest to judge:
    that depends on the references rolled back.

    `unrecorded`: the target is a --to tag no history entry has, and this names the history searched
    ("the history", "the last 500 changes of its history"): a tag the registry lacks is then said not to
    exist, rather than to be gone (it may never have existed: a typo)."""
    have = check(target.with_digest(None))
    if have is None and unrecorded is not None:
        raise RefusedError(
            f"{target.with_digest(None)} does not exist in the registry (and no value in {unrecorded} has that "
            "tag); refusing to roll back to it",
            hint="check --to (`gitops history` lists the earlier values), or skip the check with --no-verify",
        )
    if have is None:
        raise RefusedError(
            f"{target.with_digest(None)} no longer exists in the registry; refusing to roll back to it",
            hint="publish it again, choose another --to/--steps, or skip the check with --no-verify",
        )
    return have


def settle_digest(target: ImageRef, now: str | None, chosen: Mapping[tuple[str, int], str],
                  check: TagChecker | None, recorded: HistoryEntry | None = None) -> ImageRef:
    """The target as the rollback writes it and its `Image:` trailer names it, given the references it changes
    (`chosen`: (file, line) -> value as written) and the digest the registry's tag names `now` (None: not
    checked, --no-verify).  A reference that carries a digest gets the one recorded in history; one that
    carries none gets the tag, and so runs whatever image the tag names when it is pulled.  So, when the
    recorded digest is not the tag's now (the tag was moved since):
    - every reference changed carries a digest: the recorded one is kept (a warning says so), and it must still
      be in the registry (RefusedError, exit 6);
    - one carries none: RefusedError (exit 6), naming the image the tag names now and the one that ran: the
      rollback would deploy another image than the one it goes back to.
    Unchecked (--no-verify), references carrying no digest get the tag with a warning, and when none carries
    one the target has no digest: the trailer records no digest nothing was checked to have, nor written."""
    if not target.digest:
        return target
    tag = target.with_digest(None)
    bare = sorted(where for where, value in chosen.items() if not _digest_of(value))
    since = f", commit {recorded.commit[:12]}" if recorded is not None else ""
    if now is not None and now != target.digest:
        if bare:
            raise RefusedError(
                f"{tag} now names another image ({now}) than when it was deployed ({target.digest}{since}), and "
                f"the references rolled back carry no digest ({_spots(bare)}): they would run the image the tag "
                "names now; refusing to roll back",
                hint=f"point {target.tag} back at {target.repository_only().with_digest(target.digest)} (the image "
                     "that ran), roll back to another value with --to/--steps, or take the tag as it is now with "
                     "--no-verify")
        output.warn(f"{tag} now points to {now}; keeping the recorded digest {target.digest}")
        if check is not None and check(target.repository_only().with_digest(target.digest)) is None:
            raise RefusedError(
                f"the recorded digest {target.digest} of {tag} is gone from the registry",
                hint="choose another --to/--steps, or skip the check with --no-verify",
            )
        return target
    if bare and now is None:
        output.warn(f"{_spots(bare)}: no digest there: {'they get' if len(bare) > 1 else 'it gets'} the tag "
                    f"{target.tag}, whatever image it names now (not checked: --no-verify); it named "
                    f"{target.digest} when it was deployed{since}")
        if len(bare) == len(chosen):
            return target.with_digest(None)
    return target


def _digest_of(value: str) -> str | None:
    written = try_parse(value)
    return written.digest if written is not None else None


def _spots(where: Sequence[tuple[str, int]], most: int = 3) -> str:
    """`file:line, file:line, ...`: the first `most` of them."""
    shown = ", ".join(f"{path}:{line}" for path, line in where[:most])
    return shown + (", ..." if len(where) > most else "")


class NothingToRollBackError(NotFoundError):
    """Exit 3: the rollback would change no reference although its target is another value: none is at the value
    rolled back from in the files the change rolled back set it in (moved, deleted or changed since)."""


def nothing_to_roll_back(target: ImageRef, current: HistoryEntry, undo: Undo,
                         to_given: bool = False) -> NothingToRollBackError:
    """The refusal of a rollback that changes nothing (see NothingToRollBackError): what it rolls back, the files
    that change set it in, and the references of the image found elsewhere and left as they are.  The hint
    names the target only when `--to` gave it (`to_given`): a value taken from the history of other files
    (a deleted preview's tag) is no value to suggest for these."""
    def listed(items: Sequence[str]) -> str:
        return ", ".join(items[:3]) + (", ..." if len(items) > 3 else "")

    found = sorted(undo.found.items())
    away = [(where, value) for where, value in found if not _at(value, target)]
    shown = listed([f"{path}:{line} ({_value_of(value)})" for (path, line), value in found])
    change = f"the change rolled back (commit {current.commit[:12]}"
    if undo.files:
        why = (f"{change}) set {current.value} in {listed(sorted(undo.files))}, and no reference there is at "
               f"{current.value} now (changed since)")
    else:  # history names a change's files at the branch's tip: none is left
        why = (f"{change}: {listed(sorted(undo.set_in))}) holds no file of the tree now (deleted since, or by that "
               "change)")
    message = (f"{target.name}: nothing rolled back from {current.value} to {target.tag}: {why}; the references "
               f"found were left as they are: {shown}")
    if not away:
        message += f", every one at {target.tag} already"
    if away:
        (path, _), _ = away[0]
        scope = posixpath.dirname(path) or path
        if to_given:
            hint = (f"roll back where the image is now: `gitops rollback --path {scope} --to {target.tag}` (see "
                    f"`gitops history --path {scope}`)")
        else:
            hint = (f"roll back where the image is now, by that path's own history: `gitops rollback --path "
                    f"{scope}` (see `gitops history --path {scope}`), or to a value you choose with --to")
    else:
        hint = "see `gitops history`: roll back one environment with `--path DIR --to TAG`"
    return NothingToRollBackError(message, hint=hint)


def _at(value: str, target: ImageRef) -> bool:
    """A reference's value is the target's (_pinned_at)."""
    written = try_parse(value)
    return written is not None and _pinned_at(written, target.tag, target.digest)


def _pinned_at(written: ImageRef, tag: str | None, digest: str | None) -> bool:
    """A reference written so is at the value `tag`/`digest`: the same tag, and the same digest, where both
    have one (at least one of the two compared)."""
    pairs = [(a, b) for a, b in ((written.tag, tag), (written.digest, digest)) if a and b]
    return bool(pairs) and all(a == b for a, b in pairs)


def _value_of(value: str) -> str:
    """A reference's value as history shows it (`v2`, `v2@sha256:...`), or `no tag`."""
    written = try_parse(value)
    return (value_text(written.tag, written.digest) if written is not None else "") or "no tag"


def rollback(
    request: RollbackRequest,
    *,
    check_tag: TagChecker | None = None,
    resolve_digest: Callable[[ImageRef, Any], str] | None = None,
    environ: Mapping[str, str] | None = None,
    landed: Callable[[RollbackResult], None] | None = None,
) -> RollbackResult:
    """Read the image's history and bump it back, from ONE shallow clone: the clone the bump commits in
    is the one the history is read from (deepened as far as needed).  `landed`: called as soon as the
    push went through (see bump.Landed)."""
    limit = HISTORY_SEARCH_LIMIT if request.to is not None else request.steps + 1
    wanted = HistoryRequest(deploy_repo=request.deploy_repo, image=request.image, branch=request.branch,
                            paths=request.paths, limit=limit, ssh_key=request.ssh_key, names=request.names,
                            container=request.container)
    check_choice(request.to, request.steps)  # bad input: exit 2 before any clone
    plan = BumpRequest(
        deploy_repo=request.deploy_repo, images=[], branch=request.branch, paths=request.paths,
        container=request.container, author=request.author, push_branch=request.push_branch,
        dry_run=request.dry_run, retries=request.retries, lock_wait=request.lock_wait, ssh_key=request.ssh_key,
        names=request.names,
    )
    remote = reach(plan, environ, images_required=False)
    # a local checkout's history is read and rolled back under its lock: no other bump lands in between
    locked = (checkout_lock(local_scope(remote.local, plan)[0], plan.lock_wait, plan.names)
              if remote.local and not request.dry_run else None)
    with prepare(plan, environ, remote=remote) as prepared, locked or nullcontext():
        while True:
            if prepared.work is None or prepared.branch is None:  # a local checkout: read in place
                history = read_history(wanted, environ=environ)
            else:
                history = history_in_clone(prepared.work, prepared.remote, prepared.branch, wanted)
            try:
                target, recorded = choose_target(request.image, history.entries, request.to, request.steps)
                break
            except SeveralValuesError:
                raise
            except NotFoundError as exc:  # entries at the current value are skipped: read further back, if any
                if history.shallow_at is not None:  # a shallow local checkout: the rest is not here to read
                    raise NotFoundError(f"{exc.message} ({shallow_cut(history.shallow_at)})",
                                        hint=SHALLOW_HINT) from None
                if history.complete or wanted.limit >= HISTORY_SEARCH_LIMIT:
                    raise
                wanted = replace(wanted, limit=min(wanted.limit * 2, HISTORY_SEARCH_LIMIT))
        current = history.entries[0]
        now = None  # the digest the target tag names in the registry (None: not checked)
        if request.verify and check_tag is not None:
            searched = "the history" if history.complete else f"the last {len(history.entries)} changes of its history"
            now = verify_target(target, check_tag, unrecorded=searched if recorded is None else None)
        undo = Undo(history.entries)
        prepared.request = replace(plan, message=f"Roll back {{repository}} to {target.tag}",
                                   trailers=(("Rollback-Of", current.commit),), select=undo)
        # what undo sees on the tree the history was read from, before anything is written: the references
        # the rollback changes, and those of the image it leaves
        prepared_edits(prepared, target, resolve_digest)
        surveyed = undo.take()
        if undo.found and not undo.chosen:  # none found at all: the bump's own "no reference found" (exit 3)
            raise nothing_to_roll_back(target, current, undo, to_given=request.to is not None)
        target = settle_digest(target, now, undo.chosen, check_tag, recorded)
        output.info(f"rolling back {request.image.name} from {current.value} (commit {current.commit[:12]}) "
                    f"to {target.tag}" + (f"@{target.digest}" if target.digest else ""))
        # the values it rolls back: a local checkout's now (its bump first fast-forwards it to origin's
        # head), else those of the first computation, on the clone the history was read from (or, with
        # --push-branch, on that branch's head, where the bump applies)
        baseline = surveyed if remote.local is not None and not request.dry_run else None
        def pushed(bumped: BumpResult) -> None:
            if landed is not None:
                landed(RollbackResult(bump=bumped, target=target, current=current, recorded=recorded))

        result = apply(prepared, [target], resolve_digest=resolve_digest, environ=environ, landed=pushed,
                       guard=unchanged_since(target, current, undo, baseline))
    for (path, line), value in sorted(undo.left.items()):
        output.warn(f"{path}:{line}: {value} left as it is: the change rolled back did not set it there "
                    f"(`gitops bump --path {path} --image {target}` would)")
    return RollbackResult(bump=result, target=target, current=current, recorded=recorded)


def unchanged_since(target: ImageRef, current: HistoryEntry, undo: Undo,
                    baseline: set[tuple[str | None, str | None]] | None = None) -> Guard:
    """The rollback's guard (bump.Guard), checked on each computation of its edits, the ones after a fetch
    of a moved remote included: RemoteMovedError (exit 12) when a reference of the image, in the files the
    change rolled back set it in (undo), holds a value it did not hold when the rollback was computed
    (`baseline`, else the first computation's) and that is not the target.  A bump that landed meanwhile (v3,
    over the v2 being rolled back) would otherwise be undone in silence by a commit saying `Rollback-Of` the
    v2 commit, or, as v3 is no value the change set, be left with "already up to date".  Values already at
    the target are no change: a rollback done meanwhile by another run is "already up to date"."""
    seen = baseline

    def at_target(value: tuple[str | None, str | None]) -> bool:
        pairs = [(a, b) for a, b in zip(value, (target.tag, target.digest), strict=True) if a and b]
        return bool(pairs) and all(a == b for a, b in pairs)

    def guard(edits: Sequence[FileEdit]) -> None:
        nonlocal seen
        values = undo.take()
        if seen is None:
            seen = values
            return None
        moved = sorted(value_text(*v) for v in values - seen if not at_target(v))
        if moved:
            raise RemoteMovedError(
                f"{target.name} was changed since this rollback read its history: it is now at {', '.join(moved)}, "
                f"not {current.value} (commit {current.commit[:12]}), which the rollback to {target.tag} was "
                "computed from; nothing was rolled back",
                hint="see `gitops history`, and roll back again if that change is to be undone too")
        return None

    return guard
