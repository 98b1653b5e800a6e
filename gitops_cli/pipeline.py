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
- publish: publish.publish_image (immutable tags), or skipped together with the build.
- bump:    bump.apply with NAME:TAG@DIGEST: the digest from publish goes in, so digest-pinned
           references get the right digest without a registry query; Source-Commit is the tagged commit.

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

"This source state": the tag alone is not proof (a short SHA, `--tag` given by hand, another repo
pushing to the same repository).  The registry's image under the tag is this source state when its
config blob's label `org.opencontainers.image.revision` equals the full tagged commit SHA and
`org.opencontainers.image.version` equals the tag (a `-dirty-<hash>` tag carries the hash of the
uncommitted state, so two dirty states never match).  Then build and push are skipped, and the tests
too when the image carries TESTED_LABEL with the same test command (a re-run costs the tag, one
manifest and one config GET, and the bump; `rebuild` forces everything, and publish then checks that
the rebuilt image is the one published).  An image published without that label (e.g. by `gitops
publish`) still gets its tests run.  When the registry has the tag for ANOTHER revision, the run
stops before any work (exit 6, both named) unless allow_overwrite.  An image without the revision
label (pushed by other tools) is rebuilt, and publish decides by content as it always does.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitops_cli import output
from gitops_cli.errors import GitopsError, RefusedError
from gitops_cli.imageref import ImageRef, parse_repository, validate_tag

STEPS = ("tag", "test", "build", "publish", "bump")
REVISION_LABEL = "org.opencontainers.image.revision"
VERSION_LABEL = "org.opencontainers.image.version"
TESTED_LABEL = "dev.gitops-cli.tested-command"  # set by build-and-bump when its tests passed before the build
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
            "error": self.error.message if self.error else None,
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
        record.status, record.detail = "failed", exc.message.splitlines()[0]
        raise
    finally:
        record.seconds = clock() - start


# --- "already published for this source state" -----------------------------------------------------


@dataclass(frozen=True)
class Published:
    """The registry's image for the tag, built from this source state."""

    digest: str  # manifest digest
    tested_command: str | None  # TESTED_LABEL: the test command that passed before it was built


def published_image(ref: ImageRef, sha: str, client: Any, allow_overwrite: bool = False) -> Published | None:
    """The registry's image for ref when it holds this source state; None when a build is needed.

    `client`: a registry.Client for ref's registry (the pipeline's one client: its token is reused by
    publish).  RefusedError (exit 6) when the tag names an image built from another revision (unless allowed).
    """
    from gitops_cli import registry

    manifest = registry.get_manifest(ref, client=client)
    if manifest is None or manifest.is_index or manifest.config_digest is None:
        return None
    config = registry.get_blob_json(ref, manifest.config_digest, client=client)
    labels = (config.get("config") or {}).get("Labels") or {}
    revision, version = labels.get(REVISION_LABEL), labels.get(VERSION_LABEL)
    if revision == sha and version in (None, ref.tag):
        return Published(manifest.digest, labels.get(TESTED_LABEL))
    if revision and revision != sha and not allow_overwrite:
        raise RefusedError(
            f"refusing to build {ref}: the registry already has this tag for revision {revision} "
            f"({manifest.digest}), not for {sha}",
            hint="tags are immutable: use another tag (--tag/--prefix), or pass --allow-overwrite",
        )
    return None


# --- the use case ---------------------------------------------------------------------------------


def run(request: PipelineRequest, environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic) -> PipelineResult:
    """Run the pipeline; the first failing step stops it (its GitopsError is in result.error)."""
    result = PipelineResult()
    try:
        _run(request, result, os.environ if environ is None else environ, clock)
    except GitopsError as exc:
        result.error = exc
    return result


def _run(request: PipelineRequest, result: PipelineResult, env: Mapping[str, str],
         clock: Callable[[], float]) -> None:
    from gitops_cli import bump as bumping

    name = parse_repository(request.image)  # invalid input: exit 2 before any work
    if request.tag is not None:
        validate_tag(request.tag)
    remote = bumping.reach(request.bump, env, images_required=False)  # no network
    deploy: _DeployRepoClone | None = None
    try:
        with _step(result, "tag", clock) as rec:
            result.tag, result.sha = _tag(request, env)
            result.ref = name.with_tag(result.tag)
            from gitops_cli.publish import check_publishable

            check_publishable(result.ref, request.allow_mutable_tag, request.mutable_tags)  # before any work
            rec.detail = f"{result.tag} ({result.sha})"
            output.step(f"Tag {result.ref} (commit {result.sha})")
            deploy = _DeployRepoClone(request.bump, remote, env, name)  # taggable: clone while the rest runs
            from gitops_cli import registry

            reg = registry.Client(registry.registry_host(result.ref), request.creds, request.insecure)
            published = None
            if not request.rebuild:
                output.step(f"Checking the registry for {result.ref} built from {result.sha[:12]}")
                published = published_image(result.ref, result.sha, reg, request.allow_overwrite)
        _build_and_publish(request, result, published, deploy, reg, clock)
        with _step(result, "bump", clock) as rec:
            assert result.digest is not None and result.ref is not None and result.sha is not None
            target = result.ref.with_digest(result.digest)
            bump_env = {**env, "GITOPS_SOURCE_COMMIT": result.sha}  # the trailer names the tagged commit
            prepared = deploy.prepared()
            result.bump = bumping.apply(prepared, [target], environ=bump_env,
                                        refresh=prepared.age > STALE_AFTER)
            if result.bump.up_to_date:
                rec.detail = "already up to date"
            elif result.bump.pushed:
                rec.detail = f"{result.bump.commit} pushed to {result.bump.push_branch}"
            else:
                rec.detail = f"{result.bump.commit} committed" if result.bump.commit else "files patched"
    finally:
        if deploy is not None:
            deploy.close()  # cancels a clone still running (an earlier step failed); removes the temp dir


def _build_and_publish(request: PipelineRequest, result: PipelineResult, published: Published | None,
                       deploy: _DeployRepoClone, reg: Any, clock: Callable[[], float]) -> None:
    """The test, build and publish steps (each skipped when the registry has this source state)."""
    assert result.ref is not None and result.sha is not None
    done = f"already published for {result.sha[:12]}"
    if published is not None:
        result.digest = published.digest
        output.info(f"{result.ref} is already published for this commit ({published.digest}): "
                    "skipping build and push (--rebuild forces them)")
    engine = _EngineWarmup() if published is None else None  # a build follows: connect during the tests

    with _step(result, "test", clock) as rec:
        from gitops_cli.apptest import resolve_test_command, run_tests

        command = resolve_test_command(Path(request.repo), request.test_command)
        if published is not None and published.tested_command == output.redact(command):
            output.info(f"its tests passed before it was built ({command!r}): skipping them")
            raise _Skip(f"{done} (tests {command!r} passed)")
        rec.detail = run_tests(request.repo, command=command).command
        result.tested = True
    deploy.warn_if_failed()

    with _step(result, "build", clock) as rec:
        if published is not None:
            raise _Skip(done)
        assert engine is not None
        client = engine.client()
        rec.detail = _build(request, result, client, tested=command)
    deploy.warn_if_failed()

    with _step(result, "publish", clock) as rec:
        if not result.built:
            raise _Skip(f"{done} as {result.digest}")
        from gitops_cli.publish import publish_image

        published_now = publish_image(result.ref, creds=request.creds, allow_overwrite=request.allow_overwrite,
                                      allow_mutable_tag=request.allow_mutable_tag,
                                      mutable_tags=request.mutable_tags, insecure=request.insecure,
                                      client=client, registry_client=reg)
        result.digest, result.pushed = published_now.digest, published_now.pushed
        rec.detail = (published_now.digest if published_now.pushed
                      else f"already published as {published_now.digest}")


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


def _tag(request: PipelineRequest, env: Mapping[str, str]) -> tuple[str, str]:
    from gitops_cli.tagging import derive_tag

    # derive_tag applies the CI tag rule (never a CI merge commit by surprise) unless --sha is given
    tagged = derive_tag(request.repo, length=request.tag_length, prefix=request.tag_prefix,
                        allow_dirty=request.allow_dirty, sha=request.sha, environ=env)
    return (request.tag or tagged.tag), tagged.sha


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
    from gitops_cli.build import build_image, parse_pairs

    assert result.tag is not None and result.sha is not None
    options = dict(request.build_options)
    extra = parse_pairs(options.pop("labels", ()), "--label")
    # The tagged commit (HEAD, or --sha) is the revision: what the re-run check compares; the tests
    # that passed before this build let a re-run skip them.
    extra = {**extra, TESTED_LABEL: output.redact(tested)}
    built = build_image(request.image, repo=request.repo, tag=result.tag, revision=result.sha, labels=extra,
                        client=client, **options)
    result.built = True
    return built.image_id


# --- outputs and summary ----------------------------------------------------------------------------


def _check_value(name: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"output {name} contains a newline")  # never: tags, refs, digests and SHAs
    return value


def write_github_output(path: str | Path, outputs: Mapping[str, str]) -> None:
    """Append `name=value` lines to $GITHUB_OUTPUT (the file GitHub Actions reads step outputs from)."""
    with open(path, "a", encoding="utf-8") as f:
        for key, value in outputs.items():
            f.write(f"{key}={_check_value(key, value)}\n")


def dotenv_name(key: str) -> str:
    """Output name -> dotenv variable: `deploy-commit` -> `DEPLOY_COMMIT` (GitLab needs [A-Za-z0-9_])."""
    return key.upper().replace("-", "_")


def write_dotenv(path: str | Path, outputs: Mapping[str, str]) -> None:
    """Write a dotenv file (GitLab `artifacts:reports:dotenv`): TAG, IMAGE, DIGEST, DEPLOY_COMMIT."""
    text = "".join(f"{dotenv_name(k)}={_check_value(k, v)}\n" for k, v in outputs.items())
    tmp = Path(f"{path}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def summary_rows(result: PipelineResult) -> list[tuple[str, str]]:
    if result.bump is None:
        deploy = "-"
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
        lines.append(f"{s.name:<8} {s.status:<8} {s.seconds:>8.2f}  {s.detail}".rstrip())
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
        table.add_row(s.name, f"[{colour}]{s.status}[/]", f"{s.seconds:.2f}", _escape(s.detail))
    total = sum(s.seconds for s in result.steps)
    table.add_row("total", "[green]ok[/]" if result.ok else "[bold red]failed[/]", f"{total:.2f}", "")
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    for key, value in summary_rows(result):
        facts.add_row(key, _escape(value))
    console.print(facts)
    console.print(table)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(output.redact(text))
