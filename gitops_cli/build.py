"""`gitops build`: run the app's build command, then build the image with OCI labels and live logs.

Everything that can be checked without work is checked first (image name, tag, K=V pairs, context,
Dockerfile), then the engine is contacted, then the app's `build_command` runs, then the image build
(after the working tree is checked again: the build command must leave it in the source state checked).

`org.opencontainers.image.created` is the commit time (or SOURCE_DATE_EPOCH), not the wall clock: with
the engine's layer cache a rebuild of the same commit then yields the same image id, so `gitops publish`
recognises it as the image already published instead of refusing it as different.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_cli import git, output
from gitops_cli.errors import BuildError, DirtyTreeError, UsageError
from gitops_cli.imageref import ImageRef, parse, parse_repository, validate_tag
from gitops_cli.settings import FLAGS, Names

if TYPE_CHECKING:
    from docker import APIClient

LABEL_PREFIX = "org.opencontainers.image."
REVISION_LABEL = LABEL_PREFIX + "revision"
SOURCE_LABEL = LABEL_PREFIX + "source"
CREATED_LABEL = LABEL_PREFIX + "created"
VERSION_LABEL = LABEL_PREFIX + "version"
TESTED_LABEL = "dev.gitops-cli.tested-command"  # set by build-and-bump when its tests passed before the build
INPUTS_LABEL = "dev.gitops-cli.build-inputs"  # set by build-and-bump: what, besides the commit, made the image
# The labels gitops sets on every image it builds, to "" when it has no value for one: an image keeps the
# labels of its base image (FROM), and a base's revision or source (GHCR's, distroless') or a gitops-built
# base's build-and-bump labels would otherwise pass for this image's.  Readers take "" for "not recorded".
OWN_LABELS = (REVISION_LABEL, SOURCE_LABEL, CREATED_LABEL, VERSION_LABEL, TESTED_LABEL, INPUTS_LABEL)
# Of these, the ones --label may set instead: descriptions, not records (the version of the packaged
# software, e.g. 1.2.3; a public source URL).  The others record the build itself, and gitops alone sets them.
USER_LABELS = (SOURCE_LABEL, VERSION_LABEL)
_OWN_LABEL_HINTS = {
    REVISION_LABEL: "it is the commit built (--sha names the build after another commit)",
    CREATED_LABEL: "it is the commit time (SOURCE_DATE_EPOCH sets another)",
    TESTED_LABEL: "build-and-bump records there the test command that passed",
    INPUTS_LABEL: "build-and-bump records there what made the image besides the commit",
}


@dataclass(frozen=True)
class BuildResult:
    ref: ImageRef  # NAME:TAG as built
    image_id: str  # sha256:... (the config digest)
    revision: str | None  # full commit SHA, None outside a git checkout
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        assert self.ref.tag is not None
        return self.ref.tag


def parse_pairs(items: Iterable[str] | Mapping[str, str], setting: str, names: Names = FLAGS) -> dict[str, str]:
    """`["K=V", ...]` (the list setting `setting`: build_args, labels) -> dict (a mapping is copied as is);
    UsageError naming the item as `names` does (its flag, variable or file) for one without `=` or with
    an empty key."""
    if isinstance(items, Mapping):
        return dict(items)
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{names(setting, item)}: expected KEY=VALUE")
        out[key.strip()] = value
    return out


# a build argument's name that says it holds a secret (its value, from the environment, is masked)
SECRET_NAME_RE = re.compile(r"TOKEN|SECRET|PASS|KEY|CREDENTIAL|AUTH|PRIVATE|CERT", re.IGNORECASE)


@dataclass(frozen=True)
class BuildArgs:
    """The build arguments as given: `values` for the engine; `from_env`, the names given without a value
    (`--build-arg TOKEN`), whose value is the environment's."""

    values: dict[str, str]
    from_env: frozenset[str] = frozenset()

    def recorded(self) -> list[tuple[str, str | None]]:
        """What the build inputs record: K=V pairs as given, a name whose value is the environment's
        without it (a secret; a CI's per-job token must not make every run another build)."""
        given = [(k, v) for k, v in self.values.items() if k not in self.from_env]
        return sorted([*given, *((k, None) for k in self.from_env)], key=lambda kv: kv[0])


def parse_build_args(items: Iterable[str] | Mapping[str, str], names: Names = FLAGS,
                     environ: Mapping[str, str] | None = None) -> BuildArgs:
    """`["K=V" | "K", ...]` -> BuildArgs, as `docker build --build-arg` reads them: `K` alone takes K's value
    from the environment (registered as a secret when K's name says it is one, SECRET_NAME_RE: `NPM_TOKEN`,
    `DB_PASSWORD`; not `GIT_SHA` or `VERSION`, which would turn the tag and the commit into *** everywhere,
    the JSON result too); when K is unset the argument is not given, and the Dockerfile's `ARG K=default`
    applies (docker sends it without a value).  UsageError for an empty key (`=V`)."""
    if isinstance(items, Mapping):
        return BuildArgs(dict(items))
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    from_env: set[str] = set()
    for item in items:
        key, sep, value = item.partition("=")
        if not key.strip():
            raise UsageError(f"{names('build_args', item)}: expected KEY=VALUE or KEY (its value from the "
                             "environment)")
        key = key.strip()
        values.pop(key, None)
        from_env.discard(key)
        if sep:
            values[key] = value
            continue
        from_env.add(key)
        if key in env:
            if SECRET_NAME_RE.search(key):
                output.register_secret(env[key])
            values[key] = env[key]
    return BuildArgs(values, frozenset(from_env))


def user_labels(items: Iterable[str] | Mapping[str, str], names: Names = FLAGS) -> dict[str, str]:
    """The extra labels (`--label K=V`, the `labels` setting): parse_pairs, and UsageError (exit 2) for one
    that gitops sets itself (OWN_LABELS but USER_LABELS), naming it and why."""
    labels = parse_pairs(items, "labels", names)
    for key, value in labels.items():
        if key in OWN_LABELS and key not in USER_LABELS:
            item = value if isinstance(items, Mapping) else f"{key}={value}"
            raise UsageError(f"{names('labels', item)}: gitops sets the label {key} itself: "
                             f"{_OWN_LABEL_HINTS[key]}", hint="leave it out of the extra labels")
    return labels


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def created_time(repo: Path | None, sha: str | None, environ: Mapping[str, str] | None = None) -> str:
    """SOURCE_DATE_EPOCH, else the commit's committer date, else now (all RFC 3339, UTC)."""
    env = os.environ if environ is None else environ
    epoch = env.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:  # reproducible-builds.org: an integer count of seconds, as `date +%s` prints it
        try:
            if not (epoch.isascii() and epoch.isdigit()):
                raise ValueError
            return rfc3339(datetime.fromtimestamp(int(epoch), UTC))
        except (ValueError, OverflowError, OSError):
            raise UsageError(f"SOURCE_DATE_EPOCH={epoch!r}: expected a Unix time in whole seconds "
                             "(e.g. $(git log -1 --format=%ct))") from None
    if repo is not None and sha is not None:
        res = git.run(["show", "-s", "--format=%cI", sha], cwd=repo, check=False)
        if res.status == 0 and res.stdout.strip():
            return rfc3339(datetime.fromisoformat(res.stdout.strip()))
    return rfc3339(datetime.now(UTC))


def origin_url(repo: Path) -> str | None:
    """The app's `origin` as the source label records it: without credentials (git.url_shown: a URL's
    user-info, query and fragment, an scp-like `user:password@host:path`'s password)."""
    res = git.run(["remote", "get-url", "origin"], cwd=repo, check=False)
    return git.url_shown(res.stdout.strip()) if res.status == 0 and res.stdout.strip() else None


def oci_labels(
    repo: Path | None, sha: str | None, tag: str, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The OCI labels gitops sets, each one always (see OWN_LABELS): revision "" outside a commit (a dirty
    tree, no checkout) and source "" without an origin remote, so none is the base image's."""
    source = origin_url(repo) if repo is not None else None
    return {
        REVISION_LABEL: sha or "",
        SOURCE_LABEL: source or "",
        CREATED_LABEL: created_time(repo, sha, environ),
        VERSION_LABEL: tag,
    }


def _checkout(repo: Path) -> Path | None:
    try:
        return git.toplevel(repo)
    except DirtyTreeError:
        return None


def _resolve_paths(repo: Path, context: str | Path, dockerfile: str | Path | None,
                   names: Names = FLAGS) -> tuple[Path, str | None]:
    """The build context and the Dockerfile (relative to it when inside it; None for the context's
    `Dockerfile`); UsageError naming the setting as `names` does when one is missing.  Without a
    Dockerfile setting, a context with no `Dockerfile` but a lowercase `dockerfile` builds from that one,
    as `docker build` does."""
    ctx = (repo / context).resolve()
    if not ctx.is_dir():  # the full path too when the value is relative (to the app, the config file)
        raise UsageError(f"{names('context', str(context))}: no such directory"
                         + (f" ({ctx})" if str(ctx) != str(context) else ""))
    if dockerfile is None:
        if not os.path.lexists(ctx / "Dockerfile") and (ctx / "dockerfile").is_file():
            return ctx, "dockerfile"
        if not (ctx / "Dockerfile").is_file():
            raise UsageError(f"{ctx / 'Dockerfile'}: no such file", hint="pass --file PATH")
        return ctx, None
    path = (repo / dockerfile).resolve()  # as `docker build -f`: not relative to the context
    if not path.is_file():
        raise UsageError(f"{names('dockerfile', str(dockerfile))}: no such file"
                         + (f" ({path})" if str(path) != str(dockerfile) else ""))
    return ctx, str(path.relative_to(ctx)) if path.is_relative_to(ctx) else str(path)


_STAGE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")  # a build stage's name, as the Dockerfile grammar has it
_NETWORK_RE = re.compile(r"(?:container:)?[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_names(target: str | None, network: str | None) -> None:
    """UsageError (exit 2) for a --target that names no stage or a --network that names no network,
    before any work (the engine API would get them as query parameters)."""
    if target is not None and not _STAGE_RE.fullmatch(target):
        raise UsageError(f"--target {target!r}: not a build stage name (a letter, then letters, digits, _ . -)")
    if network is not None and not _NETWORK_RE.fullmatch(network):
        raise UsageError(f"--network {network!r}: not a network name (host, none, default, a network's name "
                         "or container:NAME)")


def build_image(
    image: str,
    *,
    repo: str | Path = ".",
    tag: str | None = None,
    context: str | Path = ".",
    dockerfile: str | Path | None = None,
    build_args: Iterable[str] | Mapping[str, str] = (),
    labels: Iterable[str] | Mapping[str, str] = (),
    recorded: Mapping[str, str] | None = None,
    target: str | None = None,
    network: str | None = None,
    cache_from: Iterable[str] = (),
    pull: bool = False,
    no_cache: bool = False,
    build_command: str | None = None,
    tag_length: int = 7,
    tag_prefix: str = "",
    allow_dirty: bool = False,
    revision: str | None = None,
    client: APIClient | None = None,
    names: Names = FLAGS,
) -> BuildResult:
    """Build IMAGE:TAG from the checkout `repo` (tag derived from the commit when not given).

    `revision` (with `tag`): the full commit SHA the image is built from, for its labels (default:
    HEAD of the checkout); the pipeline passes the commit it tagged, sparing a git call.  `labels`: the
    extra labels (user_labels: not one gitops sets, but source and version); `recorded`: the labels
    build-and-bump records (TESTED_LABEL, INPUTS_LABEL; "" when not given).  `names`: how messages name a
    bad setting (the settings' names: its flag, variable or config file)."""
    from gitops_cli import engine
    from gitops_cli.apptest import run_command
    from gitops_cli.dockerignore import BuildContext
    from gitops_cli.tagging import _index_entries, check_clean, check_sparse, check_unchanged, derive_tag, source_state

    name = parse_repository(image)
    if tag is not None:
        validate_tag(tag)
    check_names(target, network)
    args = parse_build_args(build_args, names).values
    extra = user_labels(labels, names)
    gitops_labels = {TESTED_LABEL: "", INPUTS_LABEL: "", **(recorded or {})}
    assert set(gitops_labels) == {TESTED_LABEL, INPUTS_LABEL}, "recorded: build-and-bump's labels only"
    cache = [str(parse(ref)) for ref in cache_from]
    root = Path(repo)
    ctx, dockerfile_arg = _resolve_paths(root, context, dockerfile, names)

    checkout: Path | None
    sha: str | None = None
    dirty = False
    state = ""  # the source state checked (tagging.source_state): the build command must leave it as it is
    if tag is None:  # derive_tag finds the checkout's root itself
        info = derive_tag(root, length=tag_length, prefix=tag_prefix, allow_dirty=allow_dirty,
                          context=lambda: BuildContext.load(str(ctx), dockerfile_arg))
        tag, checkout, dirty, state = info.tag, info.repo, info.dirty, info.state
        sha = None if dirty else info.sha
    else:
        checkout = _checkout(root)
        if revision is not None:  # the caller (the pipeline) tagged that commit and checked the tree clean
            sha = revision
        elif checkout is not None:
            entries = _index_entries(checkout)  # read once for both checks
            paths = check_clean(checkout, allow_dirty, what="an image with a revision label", entries=entries)
            check_sparse(checkout, lambda: BuildContext.load(str(ctx), dockerfile_arg), entries)
            dirty = bool(paths)
            state = source_state(checkout, paths) if dirty and build_command else ""
            head = git.run(["rev-parse", "--verify", "--quiet", "HEAD"], cwd=checkout, check=False).stdout.strip()
            sha = None if dirty else head or None
    if dirty:
        output.warn("the working tree is dirty: the image's org.opencontainers.image.revision label is empty "
                    "(its content is not a commit)")
    ref = name.with_tag(tag)
    all_labels = {**oci_labels(checkout, sha, tag), **extra, **gitops_labels}  # all of OWN_LABELS, always

    # what would refuse the build, without the engine, before the build command runs
    engine.check_builder(context=str(ctx), dockerfile=dockerfile_arg, network=network, cache_from=cache,
                         target=target)
    client = client or engine.connect()
    if build_command:
        output.step(f"Running the build command: {build_command}")  # as run (step escapes control characters)
        status = run_command(build_command, root)  # where `gitops test` runs the tests: the app directory
        if status != 0:
            raise BuildError(f"build command {build_command!r} failed with exit status {status}",
                             hint="fix the app build; the image was not built")
        if checkout is not None:  # what it changed would be in an image labelled as the source state checked
            check_unchanged(checkout, state, f"the build command {build_command!r}", tag)
    output.step(f"Building {ref} from {ctx}")
    image_id = engine.build(
        client, context=str(ctx), dockerfile=dockerfile_arg, tag=str(ref), buildargs=args, labels=all_labels,
        target=target, network=network, cache_from=cache, pull=pull, nocache=no_cache,
    )
    return BuildResult(ref=ref, image_id=image_id, revision=sha, labels=all_labels)
