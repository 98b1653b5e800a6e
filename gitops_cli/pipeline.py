"""`gitops build-and-bump`: tag -> test -> build -> publish -> bump, stopping at the first failure.

    run(PipelineRequest(...)) -> PipelineResult   (never raises a GitopsError: it is in result.error)

- tag:     derive_tag on the app checkout (a dirty tree is refused as by `gitops tag`); in CI the tag
           rule of gitops_cli.ci applies (never a CI merge commit by surprise).  Then (unless
           `rebuild`) ONE registry look-up: is the tag already published for this source state?
- test:    the app's tests (apptest.run_tests).  Failing tests: nothing is built, published or bumped.
           Skipped when the published image records that build-and-bump ran these tests before
           building it (label TESTED_LABEL = the test command).
- build:   unless the registry already has the tag FOR THIS SOURCE STATE (see below), build the image
           (build.build_image) with the OCI revision label set to the tagged commit, and TESTED_LABEL.
           First the checkout must still be the source state tagged (tagging.check_unchanged): tests
           that changed it (a rewritten lock file, a report not ignored) fail the step, exit 4.
- publish: publish.publish_image (immutable tags), or skipped together with the build.  Once the
           engine's push went through, result.pushed is True whatever follows; when the tag then cannot
           be read back (a registry error), result.digest is the digest the push reported (nothing is
           bumped); when another publish won the race (exit 6), there is no digest.
- bump:    bump.apply with NAME:TAG@DIGEST: the digest from publish goes in, so digest-pinned
           references get the right digest without a registry query; Source-Commit is the tagged commit.
           Never backwards: when the deploy repo's current tag for the image is a commit of this app
           that descends from the tagged one (a newer commit's run finished first), nothing is
           committed (newer_deployed, the bump's guard, checked again after each fetch of a moved
           remote); the step is skipped with a warning, exit 0.

The deploy repo is prepared (bump.prepare: a shallow clone into a temp dir and a checkout of the
files that name the image) in a background thread started in the tag step, as soon as the checkout is
known to be taggable, so the clone overlaps the registry look-up, the tests, the build and the push.
Its progress lines are kept and printed at the bump step (no interleaving); the order of effects stays
tag -> test -> build -> publish -> bump: a deploy repo that cannot be cloned is the BUMP step's failure
(same error and exit code as `gitops bump`), after the image is published -- a warning says so as soon
as it is known (between steps).  Publishing anyway is deliberate: once the deploy repo is fixed (token,
URL), the re-run skips tests, build and push.  Invalid --deploy-repo input (no such directory,
--no-commit with a URL, a missing --ssh-key) is refused before any work (exit 2).  When an earlier step
fails, the clone is cancelled (git terminated) and its temp dir removed.  A clone older than STALE_AFTER
seconds is checked against the remote (one ls-remote) and fast-forwarded when the remote moved
meanwhile, so a long build does not cost a rejected push.

"This source state": the tag alone is not proof (a short SHA, `--tag` given by hand, another repo pushing
to the same repository). The registry's image under the tag is this source state when its config blob's
label `org.opencontainers.image.revision` equals the full tagged commit SHA and
`org.opencontainers.image.version` equals the tag or the version a --label sets (a `-dirty-<hash>` tag
carries the hash of the uncommitted state, so two dirty states never match); an empty label is none
(gitops sets its labels empty rather than leave the base image's: build.OWN_LABELS). Then build and push
are skipped, and the tests too when the image carries TESTED_LABEL with the same test command (a re-run
costs the tag, one manifest and one config GET, and the bump; `rebuild` forces everything, and publish
then checks that the rebuilt image is the one published). An image published without that label (e.g. by
`gitops publish`) still gets its tests run. When the registry has the tag for ANOTHER revision, the run
stops before any work (exit 6, both named) unless allow_overwrite, and so does a tag that holds no
one-platform image (an index, a schema1 manifest, a manifest of unknown media type: named as such).
An image without the revision label (pushed by other tools) is rebuilt, and publish decides by content
as it always does.  The config blob is verified against its digest: wrong content (a broken cache in
front of the registry) is a registry error (exit 8), never "this source state".
The commit is not all that makes an image: build-and-bump also records INPUTS_LABEL (build_inputs:
a short sha256 of each of the Dockerfile's bytes, its path, the context, the build args, the target,
the extra labels and the build command; and, when `--sha` names a commit whose tree is not the one built,
SOURCE_INPUT: the tree built).  An image of this commit with other recorded inputs is not
"this source state" and the tag would then name another image: refused like another revision (exit 6,
naming the inputs that differ) unless allow_overwrite.  An image without that label (`gitops publish`)
is judged by its revision alone.

Failing tests are the test step's exit 1 (14 when the shell could not start the command: 126/127), the
command's own status in the message and in `test_status`.  An interrupt (KeyboardInterrupt) is recorded
like a failure of the running step (result.interrupted): the caller writes what is known, then re-raises.
An interrupt during the bump's push lets the push finish or checks the remote (bump._push): a commit the
remote has is result.bump (the deploy commit of the outputs), and the step's detail says what happened.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from gitops_cli import output
from gitops_cli.build import INPUTS_LABEL, REVISION_LABEL, TESTED_LABEL, VERSION_LABEL
from gitops_cli.errors import (
    EXIT_WRITE_FAILED,
    WRITE_FAILURES,
    CommandStartError,
    GitopsError,
    RefusedError,
    RegistryAuthError,
    RegistryError,
    UsageError,
    write_failure,
)
from gitops_cli.imageref import ImageRef, parse_repository, validate_tag
from gitops_cli.settings import FLAGS, Names

STEPS = ("tag", "test", "build", "publish", "bump")
OUTPUT_NAMES = ("tag", "image", "digest", "deploy-commit")
STALE_AFTER = 2.0  # seconds: an older deploy-repo clone is checked against the remote before the bump


@dataclass(frozen=True)
class PipelineRequest:
    image: str  # repository to build, without tag
    bump: Any  # bump.BumpRequest (images are filled in by the pipeline)
    repo: Path = Path(".")
    tag: str | None = None  # default: derived from the commit
    sha: str | None = None  # --sha: name the build after this commit (explicit, bypasses the CI rule)
    tag_length: int = 7
    tag_prefix: str = ""
    allow_dirty: bool = False
    test_command: str | None = None
    build_options: Mapping[str, Any] = field(default_factory=dict)  # build.build_image keyword arguments
    rebuild: bool = False
    creds: Any = None  # registry.Credentials
    allow_overwrite: bool = False
    allow_mutable_tag: bool = False
    mutable_tags: tuple[str, ...] = ()
    insecure: tuple[str, ...] = ()
    names: Names = FLAGS  # how messages name a setting's value (its source): image, build args, labels, ...


@dataclass
class StepRecord:
    name: str
    status: str = "not run"  # ok | skipped | failed | not run
    seconds: float = 0.0
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "seconds": round(self.seconds, 3),
                "detail": self.detail}


@dataclass
class PipelineResult:
    steps: list[StepRecord] = field(default_factory=lambda: [StepRecord(n) for n in STEPS])
    tag: str | None = None
    sha: str | None = None
    ref: ImageRef | None = None  # NAME:TAG
    digest: str | None = None
    tested: bool = False  # the tests ran (and passed) in this run
    built: bool = False
    pushed: bool = False
    bump: Any = None  # bump.BumpResult
    error: GitopsError | None = None
    test_status: int | None = None  # the failing test command's own exit status
    inputs: str | None = None  # INPUTS_LABEL value for this run
    interrupted: bool = False  # KeyboardInterrupt (SIGINT): error says so; the caller re-raises it
    dirty: bool = False  # --allow-dirty on a dirty tree: the image gets an empty revision label
    state: str = ""  # the source state tagged (tagging.source_state): the tests must leave it as it is

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def failed_step(self) -> str | None:
        return next((s.name for s in self.steps if s.status == "failed"), None)

    @property
    def deploy_commit(self) -> str | None:
        return self.bump.commit if self.bump is not None else None

    @property
    def up_to_date(self) -> bool:
        return self.bump is not None and self.bump.up_to_date

    def step(self, name: str) -> StepRecord:
        return next(s for s in self.steps if s.name == name)

    def outputs(self) -> dict[str, str]:
        """The step outputs: tag, image (NAME:TAG), digest, deploy-commit ('' when no commit was made)."""
        return {"tag": self.tag or "", "image": str(self.ref) if self.ref else "",
                "digest": self.digest or "", "deploy-commit": self.deploy_commit or ""}

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "tag": self.tag, "sha": self.sha,
            "image": str(self.ref) if self.ref else None,
            "digest": self.digest,
            "pinned": f"{self.ref}@{self.digest}" if self.ref and self.digest else None,
            "tested": self.tested, "built": self.built, "pushed": self.pushed,
            "deploy_commit": self.deploy_commit,
            "deploy_up_to_date": self.up_to_date if self.bump is not None else None,
            "steps": [s.to_json() for s in self.steps],
            "failed_step": self.failed_step,
            # the message, then a failed build's last log lines
            "error": "\n".join((self.error.message, *self.error.details)) if self.error else None,
            "exit_code": self.error.exit_code if self.error else 0,
            "test_status": self.test_status,
            "bump": self.bump.to_json() if self.bump is not None else None,
        }


class _Skip(Exception):
    """Raised inside a step to mark it skipped (with the reason as detail)."""


@contextmanager
def _step(result: PipelineResult, name: str, clock: Callable[[], float]) -> Iterator[StepRecord]:
    record = result.step(name)
    start = clock()
    try:
        yield record
        record.status = "ok"
    except _Skip as skip:
        record.status, record.detail = "skipped", str(skip)
    except GitopsError as exc:
        record.status, record.detail = "failed", exc.message
        raise
    except OSError as exc:  # a write the system refused (a full TMPDIR under the bump's clone): exit 74, the
        if exc.errno not in WRITE_FAILURES:  # step failed as any other: summary, JSON and outputs say so
            raise
        error = write_failure(exc)
        record.status, record.detail = "failed", error.message
        raise error from None
    except KeyboardInterrupt as exc:
        record.status, record.detail = "failed", interrupted(exc)
        raise
    finally:
        record.seconds = clock() - start


# --- "already published for this source state" -----------------------------------------------------


@dataclass(frozen=True)
class Published:
    """The registry's image for the tag, built from this source state."""

    digest: str  # manifest digest
    tested_command: str | None  # TESTED_LABEL: the test command that passed before it was built


INPUT_NAMES = ("dockerfile", "dockerfile-path", "context", "build-args", "target", "labels", "build-command")
SOURCE_INPUT = "source-tree"  # only when the tree built is not the tagged commit's (--sha on a merge checkout)


def build_inputs(repo: Path, options: Mapping[str, Any], names: Names = FLAGS) -> str:
    """INPUTS_LABEL's value: what makes the image besides the commit, one short sha256 per input
    (`dockerfile=<16 hex>;dockerfile-path=...;...`, in INPUT_NAMES order), so a mismatch can be named
    and no build argument's value is disclosed.  UsageError (exit 2) for a missing context or Dockerfile,
    a bad build arg or label, or a build the builder refuses without asking the engine (engine.check_builder),
    before any work (as `gitops build` refuses them; named as `names` does)."""
    import hashlib
    import json

    from gitops_cli.build import _resolve_paths, check_names, parse_build_args, user_labels

    check_names(options.get("target"), options.get("network"))
    root = Path(repo).resolve()
    ctx, dockerfile_arg = _resolve_paths(root, options.get("context") or ".", options.get("dockerfile"), names)
    dockerfile = ctx / (dockerfile_arg or "Dockerfile")
    # paths relative to the top of the git checkout (`..` above it): the same inputs give the same value
    # in a clone at another path (another CI runner), whichever directory of it --repo names
    from gitops_cli import git

    top = git.work_tree_top(root) or root

    def where(path: Path) -> str:
        return Path(os.path.relpath(path.resolve(), top)).as_posix()

    # a path as the bytes its name has on disk (os.fsencode: one that is not UTF-8 too); a value given as text
    # as UTF-8, a byte that is not UTF-8 (from the command line or the environment) as itself
    values: dict[str, bytes] = {
        "dockerfile": dockerfile.read_bytes(),
        "dockerfile-path": os.fsencode(where(dockerfile)),
        "context": os.fsencode(where(ctx)),
        "build-args": json.dumps(parse_build_args(options.get("build_args") or (), names).recorded()).encode(),
        "target": (options.get("target") or "").encode("utf-8", "surrogateescape"),
        "labels": json.dumps(sorted(user_labels(options.get("labels") or (), names).items())).encode(),
        "build-command": (options.get("build_command") or "").encode("utf-8", "surrogateescape"),
    }
    from gitops_cli.engine import check_builder

    # a build the builder would refuse (BuildKit-only syntax for the legacy builder): before the tests
    check_builder(context=str(ctx), dockerfile=dockerfile_arg, network=options.get("network"),
                  cache_from=list(options.get("cache_from") or ()), target=options.get("target"))
    return ";".join(f"{k}={hashlib.sha256(values[k]).hexdigest()[:16]}" for k in INPUT_NAMES)


def input_differences(recorded: str, current: str) -> list[str]:
    """The names of the inputs that differ between two INPUTS_LABEL values (all when unparsable)."""
    def parse(value: str) -> dict[str, str]:
        return dict(item.partition("=")[::2] for item in value.split(";") if "=" in item)

    old, new = parse(recorded), parse(current)
    names = [k for k in (*INPUT_NAMES, SOURCE_INPUT) if old.get(k) != new.get(k)]
    return names or ([] if recorded == current else ["build inputs"])


def published_image(ref: ImageRef, sha: str | None, client: Any, allow_overwrite: bool = False,
                    inputs: str | None = None, version: str | None = None) -> Published | None:
    """The registry's image for ref when it holds this source state; None when a build is needed.

    `sha` None: a dirty tree (--allow-dirty), whose image has an empty revision label and whose
    `-dirty-<hash>` tag names the uncommitted state: this state is an image without a revision under that
    tag.  `version`: the version label this run sets (a --label's, else the tag).  A label gitops sets
    that is empty is one not recorded (build.OWN_LABELS: gitops sets them empty rather than leave the base
    image's).

    `client`: a registry.Client for ref's registry (the pipeline's one client: its token is reused by
    publish).  RefusedError (exit 6) when the tag names an image built from another revision, or from
    this revision with other build inputs (`inputs`, INPUTS_LABEL; an image without that label, e.g.
    from `gitops publish`, is judged by its revision alone), or something that is no one-platform image
    (an index, a schema1 manifest, an unknown media type: no config), unless allow_overwrite (then:
    None).  The config blob is verified against its digest (registry.get_blob_json): wrong content from
    a broken cache is exit 8, never taken for this source state.
    """
    from gitops_cli import registry

    manifest = registry.get_manifest(ref, client=client)
    if manifest is not None and manifest.config_digest is None and not allow_overwrite:
        if manifest.is_index:
            raise _index_refusal(ref, manifest, sha, client)
        raise RefusedError(  # publish would refuse to replace it after the tests and the build
            f"refusing to build {ref}: the registry already has this tag as a {manifest.kind} ({manifest.digest}), "
            "not an image gitops builds (it has no image config)",
            hint="tags are immutable: use another tag (--tag/--prefix), or pass --allow-overwrite to replace it",
        )
    if manifest is None or manifest.config_digest is None:
        return None
    config = registry.get_blob_json(ref, manifest.config_digest, client=client)
    labels = {k: v for k, v in ((config.get("config") or {}).get("Labels") or {}).items() if v}
    revision, found = labels.get(REVISION_LABEL), labels.get(VERSION_LABEL)
    expected = (ref.tag if version is None else version) or None
    same = revision == sha and found in (None, expected) if sha else revision is None and found == expected
    differs: list[str] = []
    if same:
        recorded = labels.get(INPUTS_LABEL)
        if inputs is None or recorded is None or recorded == inputs:
            return Published(manifest.digest, labels.get(TESTED_LABEL))
        differs = input_differences(recorded, inputs)
    elif sha and revision == sha:  # this commit, another version label (a --label's): another image
        differs = [f"version label {found!r}, this run's {expected or ''!r}"]
    if differs:
        if allow_overwrite:
            return None  # rebuilt, and published over it
        raise RefusedError(
            f"refusing to build {ref}: the registry already has this tag for "
            f"{sha[:12] if sha else 'this uncommitted state'} ({manifest.digest}), "
            f"built with other build inputs (differs: {', '.join(differs)}); "
            "the tag would then name another image",
            hint="tags are immutable: use another tag for this variant (--tag/--prefix), or pass "
                 "--allow-overwrite to replace it",
        )
    if revision and revision != sha and not allow_overwrite:
        raise RefusedError(
            f"refusing to build {ref}: the registry already has this tag for revision {revision} "
            f"({manifest.digest}), not for {sha or 'this uncommitted state'}",
            hint="tags are immutable: use another tag (--tag/--prefix), or pass --allow-overwrite",
        )
    return None


def _version_label(request: PipelineRequest) -> str | None:
    """The version label a --label (or the `labels` setting) sets, None when the tag is the version."""
    from gitops_cli.build import user_labels

    return user_labels(request.build_options.get("labels") or (), request.names).get(VERSION_LABEL)


def _index_refusal(ref: ImageRef, index: Any, sha: str | None, client: Any) -> RefusedError:
    """A multi-platform index under the tag (pushed by another tool: gitops pushes one platform) is never
    this run's image: publish would refuse to replace it after the tests and the build, so the run is
    refused before any work (exit 6).  An index has no config of its own: the message names the revision
    that its first platform's image (attestation entries, `unknown/unknown`, aside) records, if any."""
    from gitops_cli import registry

    revision = None
    for entry in index.data.get("manifests") or []:
        if not isinstance(entry, dict) or not entry.get("digest"):
            continue
        if isinstance(entry.get("platform"), dict) and entry["platform"].get("os") == "unknown":
            continue  # an attestation manifest
        try:
            image = registry.get_manifest(ref.with_digest(str(entry["digest"])), client=client)
            if image is not None and image.config_digest is not None:
                config = registry.get_blob_json(ref, image.config_digest, client=client)
                revision = ((config.get("config") or {}).get("Labels") or {}).get(REVISION_LABEL) or None
        except registry.DigestMismatchError:
            raise  # wrong content: the registry's fault (exit 8), whatever it said
        except GitopsError:
            pass  # cannot tell: refused all the same
        break
    if revision and sha and revision == sha:
        what = f"for {sha[:12]}, this revision, but not as the one-platform image this run would publish"
    elif revision:
        what = f"for revision {revision}, not for {sha or 'this uncommitted state'}"
    else:
        what = "whose revision its images do not record"
    return RefusedError(
        f"refusing to build {ref}: the registry already has this tag as a multi-platform index "
        f"({index.digest}) {what}",
        hint="tags are immutable: use another tag (--tag/--prefix), or pass --allow-overwrite to replace it",
    )


# --- the use case ---------------------------------------------------------------------------------


def run(request: PipelineRequest, environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic) -> PipelineResult:
    """Run the pipeline; the first failing step stops it (its GitopsError is in result.error)."""
    result = PipelineResult()
    try:
        _run(request, result, os.environ if environ is None else environ, clock)
    except GitopsError as exc:
        result.error = exc
    except KeyboardInterrupt as exc:  # what completed is recorded and reported; the caller re-raises (exit 130)
        result.interrupted = True
        result.error = GitopsError(interrupted(exc), exit_code=130)
    return result


def interrupted(exc: KeyboardInterrupt) -> str:
    """"interrupted", and what the interrupted step left when it says (a bump's push: see bump._push)."""
    from gitops_cli.interrupts import Interrupted

    return f"interrupted: {exc.detail}" if isinstance(exc, Interrupted) else "interrupted"


def _run(request: PipelineRequest, result: PipelineResult, env: Mapping[str, str],
         clock: Callable[[], float]) -> None:
    from gitops_cli import bump as bumping

    name = parse_repository(request.image)  # invalid input: exit 2 before any work
    if request.tag is not None:
        validate_tag(request.tag)
    remote = bumping.reach(request.bump, env, images_required=False)  # no network
    if remote.local is not None and request.bump.paths:  # a clone's are checked in the background (_DeployRepoClone)
        bumping.check_local_paths(remote.local, request.bump)
    result.inputs = build_inputs(Path(request.repo), request.build_options, request.names)  # no Dockerfile: exit 2
    from gitops_cli.apptest import resolve_test_command

    test_command = resolve_test_command(Path(request.repo), request.test_command, flag="--test-command")
    deploy: _DeployRepoClone | None = None
    try:
        with _step(result, "tag", clock) as rec:
            result.tag, result.sha, result.dirty, result.state, other_tree = _tag(request, env)
            if other_tree is not None:  # the tag's commit is not what is built: recorded, never taken for it
                result.inputs = f"{result.inputs};{SOURCE_INPUT}={other_tree[:16]}"
            result.ref = name.with_tag(result.tag)
            from gitops_cli.publish import check_publishable

            check_publishable(result.ref, request.allow_mutable_tag, request.mutable_tags)  # before any work
            rec.detail = f"{result.tag} ({result.sha})"
            output.step(f"Tag {result.ref} (commit {result.sha})")
            deploy = _DeployRepoClone(request.bump, remote, env, name)  # taggable: clone while the rest runs
            from gitops_cli import registry

            reg = registry.Client(registry.registry_host(result.ref), request.creds, request.insecure, flags=True)
            published = None
            # a dirty state is named by its -dirty-<hash> tag; under a tag given by hand, not at all
            revision = None if result.dirty else result.sha
            if revision is not None or request.tag is None:
                output.step(f"Checking the registry for {result.ref} built from {result.sha[:12]}")
                published = published_image(result.ref, revision, reg, request.allow_overwrite,
                                            inputs=result.inputs, version=_version_label(request))
                if request.rebuild:  # forced; refused now when the rebuilt image could not be published
                    _check_rebuild(result.ref, published, test_command, request.allow_overwrite)
                    published = None
        _build_and_publish(request, result, published, deploy, reg, clock, test_command)
        with _step(result, "bump", clock) as rec:
            assert result.digest is not None and result.ref is not None and result.sha is not None
            target = result.ref.with_digest(result.digest)
            bump_env = dict(env)  # the trailer names the tagged commit, unless GITOPS_SOURCE_COMMIT is set
            if not env.get("GITOPS_SOURCE_COMMIT", "").strip():
                bump_env["GITOPS_SOURCE_COMMIT"] = result.sha
            prepared = deploy.prepared()
            app, ours, prefix = Path(request.repo), result.sha, request.tag_prefix

            def landed(bumped: Any) -> None:  # pushed: the outputs name it, even if interrupted right after
                result.bump = bumped

            result.bump = bumping.apply(prepared, [target], environ=bump_env,
                                        refresh=prepared.age > STALE_AFTER,
                                        guard=lambda edits: newer_deployed(app, ours, prefix, name, edits),
                                        landed=landed)
            if result.bump.superseded:
                output.warn(f"not bumped: {result.bump.superseded}")
                raise _Skip(f"not bumped: {result.bump.superseded}")
            if result.bump.up_to_date:
                rec.detail = "already up to date"
            elif result.bump.pushed:
                rec.detail = f"{result.bump.commit} pushed to {result.bump.push_branch}"
            else:
                rec.detail = f"{result.bump.commit} committed" if result.bump.commit else "files patched"
    finally:
        if deploy is not None:
            deploy.close()  # cancels a clone still running (an earlier step failed); removes the temp dir


_SHA_TAG = re.compile(r"[0-9a-f]{7,40}")


def newer_deployed(app: Path, ours: str, prefix: str, name: ImageRef, edits: Any) -> str | None:
    """Why the bump must not be made, or None: a tag it would replace names a commit of the app checkout
    `app` that descends from `ours` (the tagged commit), i.e. a newer commit's image is deployed (two runs
    finishing out of order).  Tags are read as the pipeline makes them (`prefix` + a short or full SHA);
    a tag that is no such SHA, or names a commit this checkout does not have (a shallow CI clone), is no
    evidence, and the bump goes ahead.  `edits`: bump.FileEdit list (its Change.old values)."""
    from gitops_cli import git
    from gitops_cli.imageref import try_parse

    old_tags: set[str] = set()
    for edit in edits:
        for change, owner in zip(edit.changes, edit.images, strict=True):
            if owner not in (None, name.normalized_name):
                continue
            if change.field is None:  # a whole reference, NAME:TAG[@DIGEST]
                parsed = try_parse(change.old)
                tag = parsed.tag if parsed is not None else None
            else:  # a map's field: newTag / tag hold a tag (Helm's may carry @digest); digests are no evidence
                tag = None if "digest" in change.field.lower() else change.old.partition("@")[0]
            if tag and tag.startswith(prefix) and _SHA_TAG.fullmatch(tag[len(prefix):]):
                old_tags.add(tag)
    for tag in sorted(old_tags):
        res = git.run(["rev-parse", "--verify", "--quiet", f"{tag[len(prefix):]}^{{commit}}"], cwd=app, check=False)
        theirs = res.stdout.strip()
        if res.status != 0 or not theirs or theirs == ours:
            continue
        if git.is_ancestor(app, ours, theirs):
            return (f"the deploy repo has {name.name}:{tag}, built from {theirs[:12]}, a newer commit than "
                    f"{ours[:12]} (it descends from it); roll back on purpose with `gitops rollback`")
    return None


def _check_rebuild(ref: ImageRef, published: Published | None, command: str, allow_overwrite: bool) -> None:
    """--rebuild of an image the registry has for this source state: the rebuilt image records the test
    command that passed (TESTED_LABEL), so with another command than the published image records it is
    another image, which publish would refuse after the tests and the build: refused before any work
    (exit 6) instead, unless allow_overwrite."""
    if published is None or allow_overwrite or published.tested_command == output.redact(command):
        return
    recorded = (f"records the test command {published.tested_command!r}" if published.tested_command
                else "records no test command (published by `gitops publish`)")
    raise RefusedError(
        f"refusing to rebuild {ref}: the published image ({published.digest}) {recorded}, this run's is "
        f"{command!r}: the rebuilt image would be another image under the same tag",
        hint="rebuild with the test command it records, use another tag (--tag/--prefix), or pass "
             "--allow-overwrite to replace it",
    )


def _build_and_publish(request: PipelineRequest, result: PipelineResult, published: Published | None,
                       deploy: _DeployRepoClone, reg: Any, clock: Callable[[], float], command: str) -> None:
    """The test, build and publish steps (each skipped when the registry has this source state)."""
    assert result.ref is not None and result.sha is not None
    done = f"already published for {result.sha[:12]}"
    if published is not None:
        result.digest = published.digest
        output.info(f"{result.ref} is already published for this commit ({published.digest}): "
                    "skipping build and push (--rebuild forces them)")
    engine = _EngineWarmup() if published is None else None  # a build follows: connect during the tests

    with _step(result, "test", clock) as rec:
        from gitops_cli.apptest import TestsFailedError, run_tests

        if published is not None and published.tested_command == output.redact(command):
            output.info(f"its tests passed before it was built ({command!r}): skipping them")
            raise _Skip(f"{done} (tests {command!r} passed)")
        try:
            rec.detail = run_tests(request.repo, command=command).command
        except TestsFailedError as exc:  # the step's documented code; the raw status stays in the message
            result.test_status = exc.status
            raise _test_failure(exc) from None
        result.tested = True
    _refuse_bad_deploy_input(result, deploy, clock)
    deploy.warn_if_failed()

    with _step(result, "build", clock) as rec:
        if published is not None:
            raise _Skip(done)
        assert engine is not None
        client = engine.client()
        rec.detail = _build(request, result, client, tested=command)
    # nothing is pushed for a bump that cannot be: with --path, the clone is waited for to check it
    _refuse_bad_deploy_input(result, deploy, clock, wait=result.built and bool(request.bump.paths))
    deploy.warn_if_failed()

    with _step(result, "publish", clock) as rec:
        if not result.built:
            raise _Skip(f"{done} as {result.digest}")
        from gitops_cli.publish import publish_image

        pushed_as: list[str] = []

        def landed(digest: str) -> None:  # the push went through: the result says so, whatever follows
            result.pushed = True
            pushed_as.append(digest)

        try:
            published_now = publish_image(result.ref, creds=request.creds, allow_overwrite=request.allow_overwrite,
                                          allow_mutable_tag=request.allow_mutable_tag,
                                          mutable_tags=request.mutable_tags, insecure=request.insecure,
                                          client=client, registry_client=reg, landed=landed)
        except (RegistryError, RegistryAuthError):
            if pushed_as:  # pushed, but the tag could not be read back: the digest the push reported
                result.digest = pushed_as[0]
            raise
        result.digest, result.pushed = published_now.digest, published_now.pushed
        rec.detail = (published_now.digest if published_now.pushed
                      else f"already published as {published_now.digest}")


def _refuse_bad_deploy_input(result: PipelineResult, deploy: _DeployRepoClone, clock: Callable[[], float],
                             wait: bool = False) -> None:
    """Between steps: the background clone's bad input (a --path the deploy repo does not have) fails the
    bump step now, with nothing more built or pushed (`wait`: wait for the clone to know)."""
    error = deploy.bad_input(wait)
    if error is not None:
        with _step(result, "bump", clock):
            raise error


NOT_STARTED = (126, 127)  # the shell's statuses for a command not executable / not found


def _test_failure(exc: Any) -> GitopsError:
    """A failing test command as the test step's error: exit 1 ("failure reported by the verb"), or 14
    when the shell could not start the command (126/127); never the command's raw status, whose
    meaning in the table of exit codes would be a lie (make's 2 = "invalid input")."""
    if exc.status in NOT_STARTED:
        return CommandStartError(exc.message, hint="the test command could not be started (status "
                                 f"{exc.status}: {'not executable' if exc.status == 126 else 'not found'})")
    return GitopsError(exc.message, exit_code=1)


class _DeployRepoClone:
    """bump.prepare in a thread (the deploy repo's shallow clone and selection) while the tests, build
    and push run.  Its progress lines are printed when the bump step takes it (never interleaved with
    the build's); its error is the bump step's; close() cancels it and removes the temp dir."""

    def __init__(self, request: Any, remote: Any, environ: Mapping[str, str], image: ImageRef) -> None:
        self._notes: list[tuple[str, str]] = []
        self._cancel = threading.Event()
        self._prepared: Any = None  # bump.PreparedBump
        self._error: BaseException | None = None
        self._warned = False
        self._thread = threading.Thread(target=self._prepare, args=(request, remote, environ, image),
                                        name="gitops-deploy-clone")
        self._thread.start()

    def _prepare(self, request: Any, remote: Any, environ: Mapping[str, str], image: ImageRef) -> None:
        from gitops_cli import bump

        try:  # the files naming the image are checked out here too (and the YAML engine imported)
            self._prepared = bump.prepare(request, environ, remote=remote, notes=self._notes,
                                          cancel=self._cancel, select_for=[image])
        except BaseException as exc:  # re-raised in the bump step, where a failure belongs
            self._error = exc

    def bad_input(self, wait: bool = False) -> UsageError | None:
        """The clone's UsageError (a --path the deploy repo does not have), once known (`wait`: wait for
        the clone): bad input that stops the run before anything is pushed, not after."""
        if wait and self._thread.is_alive():
            with output.status("Waiting for the deploy-repo clone (checking --path)"):
                self._thread.join()
        return self._error if isinstance(self._error, UsageError) and not self._thread.is_alive() else None

    def warn_if_failed(self) -> None:
        """Between steps: say once, as soon as it is known, that the bump step will fail."""
        if self._warned or self._error is None or self._thread.is_alive():
            return
        self._warned = True
        reason = self._error.message if isinstance(self._error, GitopsError) else str(self._error)
        output.warn(f"the deploy repo cannot be cloned: {reason.splitlines()[0]}; "
                    "the image is still built and published, the bump step will fail")

    def prepared(self) -> Any:
        # a clone slower than the tests, build and push: a spinner says what the run waits for
        with output.status("Waiting for the deploy-repo clone") if self._thread.is_alive() else nullcontext():
            self._thread.join()
        notes, self._notes = self._notes, []
        for kind, text in notes:
            getattr(output, kind)(text)
        if self._error is not None:
            raise self._error
        return self._prepared

    def close(self) -> None:
        self._cancel.set()  # no effect once the clone is done
        self._thread.join()
        if self._prepared is not None:
            self._prepared.close()


def _tag(request: PipelineRequest, env: Mapping[str, str]) -> tuple[str, str, bool, str, str | None]:
    """(tag, tagged commit, whether the tree is dirty: only with --allow-dirty, its source state (the dirty
    hash, "" when clean), the tree built when it is not the tagged commit's: see _other_tree)."""
    from gitops_cli import git
    from gitops_cli.build import _resolve_paths
    from gitops_cli.dockerignore import BuildContext
    from gitops_cli.tagging import derive_tag

    def build_context() -> BuildContext:  # only when a sparse checkout leaves files out
        options = request.build_options
        ctx, dockerfile = _resolve_paths(Path(request.repo).resolve(), options.get("context") or ".",
                                         options.get("dockerfile"), request.names)
        return BuildContext.load(str(ctx), dockerfile)

    # derive_tag applies the CI tag rule (never a CI merge commit by surprise) unless --sha is given; the
    # build context's files a sparse checkout leaves out are refused there
    tagged = derive_tag(request.repo, length=request.tag_length, prefix=request.tag_prefix,
                        allow_dirty=request.allow_dirty, sha=request.sha, environ=env, context=build_context)
    other_tree = None
    if request.sha is not None:  # what is built is HEAD's tree, whatever the tag names
        head = git.run(["rev-parse", "--verify", "HEAD"], cwd=tagged.repo).stdout.strip()
        if tagged.sha != head:
            output.warn(f"--sha names {tagged.sha[:12]} but the checkout is {head[:12]}: the image is built "
                        f"from the checkout ({head[:12]}'s tree) and labelled and tagged as {tagged.sha[:12]}")
            other_tree = _other_tree(tagged.repo, head, tagged.sha)
    return (request.tag or tagged.tag), tagged.sha, tagged.dirty, tagged.state, other_tree


def _other_tree(repo: Path, head: str, sha: str) -> str | None:
    """HEAD's tree when it is not the tree of the commit `sha` that names the image (--sha of a merge
    checkout), else None.  A commit the checkout lacks (a shallow CI clone) counts as another tree."""
    from gitops_cli import git

    tree = git.run(["rev-parse", "--verify", f"{head}^{{tree}}"], cwd=repo).stdout.strip()
    named = git.run(["rev-parse", "--verify", "--quiet", f"{sha}^{{tree}}"], cwd=repo, check=False).stdout.strip()
    return None if named == tree else tree


class _EngineWarmup:
    """One engine connection for build and publish, opened in a thread while the tests run: importing
    the docker SDK and the version round trip cost ~0.1 s, and the tests mostly wait on a subprocess."""

    def __init__(self) -> None:
        self._client: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._connect, name="gitops-engine-connect")
        self._thread.start()

    def _connect(self) -> None:
        from gitops_cli import engine

        try:
            self._client = engine.connect()
        except BaseException as exc:  # re-raised in the build step, where a failure belongs
            self._error = exc

    def client(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._client


def _build(request: PipelineRequest, result: PipelineResult, client: Any, tested: str) -> str:
    from gitops_cli.build import build_image
    from gitops_cli.tagging import check_unchanged

    assert result.tag is not None and result.sha is not None
    options = dict(request.build_options)
    # The tagged commit (HEAD, or --sha) is the revision: what the re-run check compares; the tests
    # that passed before this build let a re-run skip them.
    recorded = {TESTED_LABEL: output.redact(tested)}
    if result.inputs is not None:  # the build inputs: a re-run with other ones is not "already published"
        recorded[INPUTS_LABEL] = result.inputs
    # The tests ran since the tag step: what they changed in the checkout (a rewritten lock file, a
    # report) would go into an image labelled and tagged as the source state tagged.
    check_unchanged(Path(request.repo), result.state, f"the test command {tested!r}", result.tag)
    # a dirty tree: build_image checks it again, warns, and leaves the revision label empty
    built = build_image(request.image, repo=request.repo, tag=result.tag, recorded=recorded, client=client,
                        names=request.names,
                        **({"allow_dirty": True} if result.dirty else {"revision": result.sha}), **options)
    result.built = True
    return built.image_id


# --- outputs and summary ----------------------------------------------------------------------------


def _check_value(name: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"output {name} contains a newline")  # never: tags, refs, digests and SHAs
    return value


def check_output_path(path: str | Path, what: str) -> None:
    """Refuse before any work (UsageError, exit 2) an output file that cannot be written: its directory
    missing, a directory, not writable.  Symlinks are followed; FIFOs and devices are fine."""
    name = str(path)
    try:
        st = os.stat(name)
    except FileNotFoundError:
        st = None
    except OSError as exc:  # e.g. a path through a regular file
        raise UsageError(f"{what} {name}: {exc.strerror}") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise UsageError(f"{what} {name}: is a directory", hint="name a file")
        if not os.access(name, os.W_OK):
            raise UsageError(f"{what} {name}: not writable (permission denied)")
        return
    parent = Path(os.path.realpath(name)).parent  # a dangling symlink: its target is created
    if not parent.is_dir():
        raise UsageError(f"{what} {name}: no such directory {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {name}: cannot create a file in {parent} (permission denied)")


def prepare_output_files(github_output: str | None, dotenv: str | Path | None) -> int | None:
    """Before any work: refuse (UsageError, exit 2) an output file that cannot be written
    (check_output_path), or one file named by both $GITHUB_OUTPUT and --dotenv (the dotenv file is
    replaced, so the lines appended to $GITHUB_OUTPUT, this run's and earlier steps', would be lost; a
    FIFO or /dev/stdout-like name is written in place by both, and fine); and remove the dotenv file an
    earlier run left (reset_output_file), also when $GITHUB_OUTPUT is the one refused.  Returns the
    removed file's permission bits, for write_outputs to give the new one (as a replaced file keeps
    them); GitopsError (exit 74) when the system refuses the removal."""
    mode = None
    if dotenv is not None:
        check_output_path(dotenv, "--dotenv")
        if github_output is not None and _one_file(github_output, dotenv):
            raise UsageError(f"--dotenv {dotenv}: is $GITHUB_OUTPUT too; the dotenv file is replaced, which "
                             "would drop the step outputs appended to $GITHUB_OUTPUT",
                             hint="name another file for --dotenv")
        try:
            mode = reset_output_file(dotenv)
        except OSError as exc:
            raise GitopsError(f"cannot write {dotenv}: {exc.strerror or exc}", exit_code=EXIT_WRITE_FAILED) from None
    if github_output is not None:
        check_output_path(github_output, "$GITHUB_OUTPUT")
    return mode


def _one_file(github_output: str, dotenv: str | Path) -> bool:
    """Whether the dotenv file, replaced when written, is $GITHUB_OUTPUT: the same path (symlinks
    followed) or two hard links of one regular file."""
    try:
        st: os.stat_result | None = os.stat(dotenv)
    except FileNotFoundError:
        st = None
    try:
        same = st is not None and os.path.samestat(st, os.stat(github_output))
    except OSError:  # not there yet (or not usable: its own check says so)
        same = False
    if not (same or os.path.realpath(github_output) == os.path.realpath(dotenv)):
        return False
    return not _in_place(str(dotenv), st)


def _in_place(name: str, st: os.stat_result | None) -> bool:
    """FIFOs, devices and /dev/stdout-like names are written where they are, never replaced."""
    return (st is not None and not stat.S_ISREG(st.st_mode)) or name.startswith(("/dev/fd/", "/dev/std",
                                                                                 "/proc/"))


def write_output_file(path: str | Path, text: str, append: bool = False, mode: int | None = None) -> None:
    """Write (or append) `text` to an output file.  A regular file is replaced atomically (a temp file
    in its directory, never left behind) and keeps its permission bits; a new one gets `mode` when given
    (the bits of the file prepare_output_files removed), else the umask's; a symlink's target is written
    (the link stays); a FIFO or a device (/dev/stdout) is written in place, and so is a file that cannot
    be replaced (a writable file in a read-only directory; a bind-mounted file, EBUSY).  OSError when the
    system refuses the write."""
    name = str(path)
    try:
        st: os.stat_result | None = os.stat(name)
    except FileNotFoundError:
        st = None
    if append or _in_place(name, st):
        with open(name, "a", encoding="utf-8") as f:
            f.write(text)
        return
    target = Path(os.path.realpath(name))
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for a new file
    except PermissionError:  # a writable file in a read-only directory
        _write_in_place(target, text)
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            kept = stat.S_IMODE(st.st_mode) if st is not None else mode  # the replaced (or removed) file's
            if kept is not None:
                os.fchmod(f.fileno(), kept)
            f.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        with suppress(OSError):
            os.unlink(tmp)
        if exc.errno != errno.EBUSY:
            raise
        _write_in_place(target, text)  # a mount point (`docker run -v FILE:FILE`): never replaced
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def _write_in_place(target: Path, text: str) -> None:
    with open(target, "w", encoding="utf-8") as f:
        f.write(text)


def reset_output_file(path: str | Path) -> int | None:
    """Remove a regular output file an earlier run left (as `docker build --iidfile` does), so that a
    run that stops early never leaves the previous run's values behind, and that a dotenv file in the
    app checkout (GitLab wants its artifacts there) is not there while the run checks the tree, hashes
    it and sends it as the build context: it is this run's output, not its input.  A symlink's target is
    removed (the link stays: the new file is written through it).  Where the system refuses the removal
    (a directory gitops may not write to, a bind-mounted file) the file is emptied instead.  Others are
    left alone, and so is what /dev/stdout-like names lead to (`--dotenv /dev/stdout >> log`: the log is
    the user's).  Returns the removed file's permission bits (None when none was removed)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if _in_place(str(path), st):
        return None
    try:
        os.unlink(os.path.realpath(path))
    except OSError:
        os.truncate(path, 0)
        return None
    return stat.S_IMODE(st.st_mode)


def github_output_text(outputs: Mapping[str, str]) -> str:
    """`name=value` lines for $GITHUB_OUTPUT (the file GitHub Actions reads step outputs from)."""
    return "".join(f"{key}={_check_value(key, value)}\n" for key, value in outputs.items())


def write_github_output(path: str | Path, outputs: Mapping[str, str]) -> None:
    """Append the outputs to $GITHUB_OUTPUT (appended, as GitHub expects: other steps' lines stay), on a
    line of their own when the file's last line has no newline (it would take the first output)."""
    write_output_file(path, ("\n" if _ends_without_newline(path) else "") + github_output_text(outputs),
                      append=True)


def _ends_without_newline(path: str | Path) -> bool:
    """A regular file whose last byte is not a newline (a FIFO or device is never read)."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:  # opening a FIFO to read would wait
            return False
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except OSError:
        return False  # not there yet, or unreadable: the append says what is wrong


def dotenv_name(key: str) -> str:
    """Output name -> dotenv variable: `deploy-commit` -> `DEPLOY_COMMIT` (GitLab needs [A-Za-z0-9_])."""
    return key.upper().replace("-", "_")


def write_dotenv(path: str | Path, outputs: Mapping[str, str], mode: int | None = None) -> None:
    """Write a dotenv file (GitLab `artifacts:reports:dotenv`): TAG, IMAGE, DIGEST, DEPLOY_COMMIT (`mode`:
    see write_output_file)."""
    write_output_file(path, "".join(f"{dotenv_name(k)}={_check_value(k, v)}\n" for k, v in outputs.items()),
                      mode=mode)


def write_outputs(outputs: Mapping[str, str], github_output: str | None,
                  dotenv: str | Path | None, dotenv_mode: int | None = None) -> list[GitopsError]:
    """Write the step outputs to both files (each tried; `dotenv_mode`: what prepare_output_files
    returned); a refused write is an error (exit 74) in the returned list, never raised: the caller
    reports it without masking the run's own failure."""
    errors: list[GitopsError] = []
    for path, writer in ((github_output, write_github_output), (dotenv, partial(write_dotenv, mode=dotenv_mode))):
        if path is None:
            continue
        try:
            writer(path, outputs)
        except OSError as exc:
            errors.append(GitopsError(f"cannot write {path}: {exc.strerror or exc}",
                                      exit_code=EXIT_WRITE_FAILED))
    return errors


def summary_rows(result: PipelineResult) -> list[tuple[str, str]]:
    if result.bump is None:
        deploy = "-"
    elif result.bump.superseded:
        deploy = "not bumped (a newer commit's image is deployed)"
    elif result.bump.up_to_date:
        deploy = "already up to date (no commit)"
    elif result.bump.commit:
        where = f" (pushed to {result.bump.push_branch})" if result.bump.pushed else " (not pushed)"
        deploy = result.bump.commit + where
    else:
        deploy = "files patched (no commit)"
    return [("tag", result.tag or "-"), ("image", str(result.ref) if result.ref else "-"),
            ("digest", result.digest or "-"), ("deploy commit", deploy)]


def render_plain(result: PipelineResult) -> str:
    rows = summary_rows(result)
    lines = [f"{k:<14} {v}" for k, v in rows]
    lines.append("")
    lines.append(f"{'step':<8} {'status':<8} {'seconds':>8}  detail")
    for s in result.steps:
        lines.append(f"{s.name:<8} {s.status:<8} {s.seconds:>8.2f}  {output.printable(s.detail)}".rstrip())
    total = sum(s.seconds for s in result.steps)
    lines.append(f"{'total':<8} {'ok' if result.ok else 'failed':<8} {total:>8.2f}")
    return "\n".join(lines)


def render_rich(result: PipelineResult, console: Any) -> None:
    from rich.table import Table

    colours = {"ok": "green", "skipped": "yellow", "failed": "bold red", "not run": "dim"}
    table = Table(title="gitops build-and-bump", title_justify="left", show_lines=False)
    for column, justify in (("step", "left"), ("status", "left"), ("seconds", "right"), ("detail", "left")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for s in result.steps:
        colour = colours.get(s.status, "")
        table.add_row(s.name, f"[{colour}]{s.status}[/]", f"{s.seconds:.2f}", output.markup_line(s.detail))
    total = sum(s.seconds for s in result.steps)
    table.add_row("total", "[green]ok[/]" if result.ok else "[bold red]failed[/]", f"{total:.2f}", "")
    # the facts (tag, image, digest, deploy commit) are copied from the terminal: each value stays one
    # line, however narrow the terminal (it wraps it visually, without a line break in the text)
    rows = summary_rows(result)
    width = max(len(key) for key, _ in rows) + 2
    for key, value in rows:
        console.print(f"[bold]{output.markup_line(key).ljust(width)}[/]{output.markup_line(value)}",
                      soft_wrap=True)
    console.print(table)
