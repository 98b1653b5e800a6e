"""`gitops publish`: push NAME:TAG unless the registry already has it; never move an existing tag."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from gitops_cli import output
from gitops_cli.commands.options import AllowMutableTag, AllowOverwrite, PasswordStdin, Username, checked_image
from gitops_cli.settings import load_settings


def publish(
    image: str | None = typer.Option(None, "--image", help="NAME or NAME:TAG to push (or `image` in "
                                     "[tool.gitops])."),
    tag: str | None = typer.Option(None, "--tag", help="Tag when --image has none (default: the "
                                   "derived tag)."),
    repo: Path = typer.Option(Path("."), "--repo", help="The app checkout (settings, derived tag)."),
    allow_overwrite: AllowOverwrite = False,
    allow_mutable_tag: AllowMutableTag = None,
    username: Username = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Push NAME:TAG and print NAME:TAG@sha256:<digest>; skip it when already published.

    Credentials: the registry user (--username, GITOPS_REGISTRY_USERNAME or registry_username in the config
    file) with its password (--password-stdin or GITOPS_REGISTRY_PASSWORD); without a user, the docker
    config (DOCKER_CONFIG, ~/.docker/config.json, credential helpers).

    \b
    Example:
      gitops publish --image 127.0.0.1:5000/team/app:3f2a9c1
      127.0.0.1:5000/team/app:3f2a9c1@sha256:0b1c...
    """
    from gitops_cli import registry
    from gitops_cli.errors import UsageError
    from gitops_cli.imageref import parse
    from gitops_cli.publish import parse_image, publish_image

    password = registry.read_password(sys.stdin) if password_stdin else None
    from gitops_cli.engine import push_stall

    push_stall()  # a bad GITOPS_PUSH_STALL_TIMEOUT is exit 2 before any work
    settings = load_settings(repo, {"image": image, "allow_mutable_tag": allow_mutable_tag,
                                    "registry_username": username})
    if not settings.image:
        raise UsageError("--image is required (NAME:TAG, or NAME with --tag)")
    ref = checked_image(settings.image, settings.names, parse, engine=True)
    if tag is not None and ref.tag is not None and tag != ref.tag:
        raise UsageError(f"--tag {tag!r} contradicts the tag in {settings.names('image', settings.image)}")
    if ref.tag is None:
        if tag is None:
            from gitops_cli.tagging import derive_tag

            tag = derive_tag(repo, length=settings.tag_length, prefix=settings.tag_prefix).tag
        ref = ref.with_tag(tag)
    try:
        ref = parse_image(ref)
    except UsageError as exc:  # a digest in the image
        raise UsageError(f"{settings.names('image', settings.image)}: {exc.message}", hint=exc.hint) from None
    creds = registry.resolve_credentials(registry.registry_host(ref), settings.registry_username, password,
                                         names=settings.names)
    result = publish_image(
        ref, creds=creds, allow_overwrite=allow_overwrite, allow_mutable_tag=settings.allow_mutable_tag,
        mutable_tags=settings.mutable_tags, insecure=settings.insecure_registries,
    )
    output.result(result.pinned, trusted=True)
