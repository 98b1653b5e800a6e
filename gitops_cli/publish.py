"""`gitops publish`: push NAME:TAG, keeping tags immutable.

Before pushing, the registry is asked what it has under the tag:
- nothing: push, and report the manifest digest from the push stream;
- the same image: skip the push, report "already published" and the registry's digest (exit 0);
- a different image: refuse (RefusedError, exit 6, both digests named) unless allow_overwrite.

"Same image" is decided, cheapest first, by:
1. the registry's manifest digest is one of the local image's RepoDigests for this repository;
2. the manifest's config digest equals the local image id (the engine pushes the config verbatim, so
   this holds for the very image pushed before, and for a cached rebuild: build labels are
   deterministic, see build.py);
3. same content: the config blob's layer diff_ids, os/architecture and runtime config (Env, Cmd,
   Entrypoint, Labels, ...) equal the local image's: the image differs only in timestamps and
   history, and is the same image for anyone running it.  (A --no-cache rebuild of steps that write
   files does NOT qualify: the legacy builder records new mtimes, so its layers differ, and telling
   "same files" apart would mean downloading layers.  Such a rebuild is refused; keep the layer
   cache, or publish a new tag.)
A multi-platform index under the tag is only "same" by rule 1.

`latest` and branch-like tags (imageref.is_mutable_tag) are refused unless allow_mutable_tag.

The registry API has no compare-and-swap: two publishes of one tag at once (two CI runners on the same
commit) can both find the tag free and both push, the later push moving the tag.  So after its push a
run reads the tag back (one HEAD, `confirm_pushed`) and succeeds only if the tag names its image (its
digest, or by the rules above the same image: then with the tag's digest); else it is refused (exit 6,
naming the digest the tag holds), so nothing downstream (the bump, the step outputs) gets a digest the
tag does not name.  With allow_overwrite the same holds: the last push wins by design, and an earlier
one is refused after the fact.  The window that stays open (the README says so): a push that started
before the other's manifest landed, and lands after the other's read-back, succeeds as well.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitops_cli import output, registry
from gitops_cli.errors import RefusedError, RegistryAuthError, RegistryError, UsageError
from gitops_cli.imageref import ImageRef, is_mutable_tag, parse, parse_tagged, try_parse

if TYPE_CHECKING:
    from docker import APIClient

RUNTIME_KEYS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels",
                "StopSignal", "Healthcheck", "OnBuild", "Shell")
_AUTH_MARKERS = ("unauthorized", "authentication required", "denied", "no basic auth credentials")


@dataclass(frozen=True)
class PublishResult:
    ref: ImageRef  # NAME:TAG
    digest: str  # manifest digest in the registry
    pushed: bool  # False when the registry already had this image under the tag

    @property
    def pinned(self) -> str:
        """NAME:TAG@sha256:..."""
        return f"{self.ref.name}:{self.ref.tag}@{self.digest}"


def parse_image(image: str | ImageRef) -> ImageRef:
    """NAME:TAG (no digest) or UsageError/InvalidReferenceError (exit 2)."""
    ref = image if isinstance(image, ImageRef) else parse_tagged(image)
    if ref.tag is None or ref.digest is not None:
        raise UsageError(f"image {ref}: give NAME:TAG (the digest is what publish reports)")
    return ref


def check_publishable(
    ref: ImageRef, allow_mutable_tag: bool = False, mutable_tags: Iterable[str] = ()
) -> None:
    """Refuse `latest` and branch-like tags (exit 6) unless allowed."""
    assert ref.tag is not None
    if not allow_mutable_tag and is_mutable_tag(ref.tag, frozenset(mutable_tags)):
        raise RefusedError(
            f"refusing to publish {ref}: {ref.tag!r} is a mutable tag (it would be moved to other images)",
            hint="publish an immutable tag (gitops tag), or pass --allow-mutable-tag",
        )


def _same_repo_digests(local: Mapping[str, Any], ref: ImageRef) -> set[str]:
    out = set()
    for item in local.get("RepoDigests") or []:
        parsed = try_parse(item)
        if parsed is not None and parsed.digest and parsed.same_repository(ref):
            out.add(parsed.digest)
    return out


def _runtime(config: Mapping[str, Any] | None) -> dict[str, Any]:
    config = config or {}
    return {key: config.get(key) or None for key in RUNTIME_KEYS}


def same_content(local: Mapping[str, Any], remote_config: Mapping[str, Any]) -> bool:
    """Layers, platform and runtime config equal (timestamps and build history ignored)."""
    local_layers = (local.get("RootFS") or {}).get("Layers") or []
    remote_layers = (remote_config.get("rootfs") or {}).get("diff_ids") or []
    return (
        bool(local_layers)
        and list(local_layers) == list(remote_layers)
        and local.get("Os") == remote_config.get("os")
        and local.get("Architecture") == remote_config.get("architecture")
        and _runtime(local.get("Config")) == _runtime(remote_config.get("config"))
    )


def same_image(local: Mapping[str, Any], ref: ImageRef, manifest: registry.Manifest,
               fetch_config: Any = None) -> bool:
    """Is the registry's manifest for the tag the local image?  `fetch_config(digest)` loads a config blob."""
    if manifest.digest in _same_repo_digests(local, ref):
        return True
    if manifest.is_index or manifest.config_digest is None:
        return False
    if manifest.config_digest == local.get("Id"):
        return True
    return fetch_config is not None and same_content(local, fetch_config(manifest.config_digest))


def publish_image(
    image: str | ImageRef,
    *,
    creds: registry.Credentials | None = None,
    allow_overwrite: bool = False,
    allow_mutable_tag: bool = False,
    mutable_tags: Iterable[str] = (),
    insecure: Iterable[str] = (),
    client: APIClient | None = None,
    registry_client: registry.Client | None = None,
    landed: Callable[[str], None] | None = None,
) -> PublishResult:
    """Publish NAME:TAG from the local engine to its registry; see the module docstring for the rules.

    `registry_client`: an open client for the image's registry (its token is reused); else one is made.
    `landed(digest)`: called once the engine's push went through, with the digest it reported, before the
    tag is read back (confirm_pushed), so a caller knows the image was pushed even when that fails."""
    from gitops_cli import engine

    ref = parse_image(image)
    check_publishable(ref, allow_mutable_tag, mutable_tags)
    client = client or engine.connect()
    local = engine.inspect_image(client, str(ref))
    host = registry.registry_host(ref)
    reg = registry_client or registry.Client(host, creds, insecure, flags=True)

    output.step(f"Checking {ref} in {reg.url}")
    manifest = registry.get_manifest(ref, client=reg)
    if manifest is not None:
        if same_image(local, ref, manifest, lambda d: registry.get_blob_json(ref, d, client=reg)):
            output.info(f"{ref} already published as {manifest.digest}; nothing to push")
            return PublishResult(ref=ref, digest=manifest.digest, pushed=False)
        if not allow_overwrite:
            what = f"config {manifest.config_digest}" if manifest.config_digest else f"a {manifest.kind}"
            raise RefusedError(
                f"refusing to overwrite {ref}: the registry has {manifest.digest} ({what}), "
                f"the local image is {local.get('Id')}",
                hint="tags are immutable: build a new tag (commit first), or pass --allow-overwrite",
            )
        output.warn(f"overwriting {ref} (was {manifest.digest}) because of --allow-overwrite")

    output.step(f"Pushing {ref}")
    try:
        digest = engine.push(client, ref.name, str(ref.tag), creds.auth_config(host) if creds else None)
    except engine.PushFailed as exc:
        message = output.redact(str(exc))
        if any(marker in message.lower() for marker in _AUTH_MARKERS):
            raise RegistryAuthError(f"push of {ref} refused by the registry: {message}") from None
        raise RegistryError(f"push of {ref} failed: {message}", hint=exc.hint) from None
    parse(f"{ref.name}@{digest}")  # the engine's digest is well-formed
    if landed is not None:
        landed(digest)
    return confirm_pushed(ref, digest, local, reg, allow_overwrite)


def confirm_pushed(ref: ImageRef, digest: str, local: Mapping[str, Any], reg: registry.Client,
                   allow_overwrite: bool = False) -> PublishResult:
    """After this run pushed `digest` to ref's tag: does the tag name it (one HEAD)?  Another publish of the
    same tag may have pushed after this run's look-up, before or after this push (see the module
    docstring).  The same image under another digest (its own push of the same content) is this run's
    image, with the tag's digest; another image is RefusedError (exit 6)."""
    try:
        now = registry.head_digest(ref, client=reg)
        tagged = None
        if now is not None and now != digest:
            tagged = registry.get_manifest(ref.with_digest(now), client=reg)
            if tagged is not None and same_image(local, ref, tagged,
                                                 lambda d: registry.get_blob_json(ref, d, client=reg)):
                output.info(f"another publish of {ref} pushed the same image at the same time; the tag names {now}")
                return PublishResult(ref=ref, digest=now, pushed=True)
    except (RegistryError, RegistryAuthError) as exc:
        raise type(exc)(f"pushed {ref} as {digest}, but could not check that the tag names it: {exc.message}",
                        hint=exc.hint or "re-run: its look-up tells whether the tag names this image") from None
    if now == digest:
        return PublishResult(ref=ref, digest=digest, pushed=True)
    if now is None or tagged is None:
        raise RegistryError(f"registry error: {ref} names no image right after its push as {digest} "
                            "(deleted meanwhile?)", hint="re-run the publish")
    hint = ("with --allow-overwrite the last push wins, and the other run's came last: re-run to push this image "
            "over it" if allow_overwrite else
            "tags are immutable, and the tag is the other image's now: publish this image under a new tag "
            "(commit first)")
    raise RefusedError(f"another publish of {ref} won the race: the tag names {now}, not this run's {digest} "
                       f"(the local image {local.get('Id')})", hint=hint)
