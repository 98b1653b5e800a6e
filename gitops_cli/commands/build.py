"""`gitops build`: build the app image with OCI labels and live logs; print NAME:TAG and the image id."""

from __future__ import annotations

from pathlib import Path

import typer

from gitops_cli import output
from gitops_cli.settings import load_settings


def _absolute(path: Path | None) -> str | None:
    """Flags are relative to the current directory (config values are relative to the checkout)."""
    return str(path.resolve()) if path is not None else None


def build(
    image: str | None = typer.Option(None, "--image", help="Repository to build, without tag, e.g. "
                                     "registry.example.com/team/app (or `image` in [tool.gitops])."),
    tag: str | None = typer.Option(None, "--tag", help="Tag (default: the derived tag, see `gitops tag`)."),
    repo: Path = typer.Option(Path("."), "--repo", help="The app checkout (default: current directory)."),
    context: Path | None = typer.Option(None, "--context", help="Build context (default: the checkout)."),
    file: Path | None = typer.Option(None, "--file", "-f", help="Dockerfile (default: CONTEXT/Dockerfile)."),
    build_arg: list[str] = typer.Option([], "--build-arg", metavar="K=V",
                                         help="Build argument KEY=VALUE (repeatable)."),
    label: list[str] = typer.Option([], "--label", metavar="K=V",
                                     help="Extra image label KEY=VALUE (repeatable)."),
    target: str | None = typer.Option(None, "--target", help="Build this stage of a multi-stage Dockerfile."),
    network: str | None = typer.Option(None, "--network", help="Network for RUN steps (e.g. none, host)."),
    cache_from: list[str] = typer.Option([], "--cache-from", metavar="REF",
                                          help="Image to use as cache source (repeatable)."),
    pull: bool = typer.Option(False, "--pull/--no-pull", help="Always try to pull newer base images."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not use the layer cache."),
    allow_dirty: bool = typer.Option(False, "--allow-dirty", help="Build a dirty tree as <sha>-dirty-<hash> "
                                     "(local runs only)."),
) -> None:
    """Run the app's build_command (if configured), then build IMAGE:TAG with OCI labels.

    Prints NAME:TAG and then the image id on stdout; the build log goes to stderr.

    \b
    Example:
      gitops build --image 127.0.0.1:5000/team/app
      127.0.0.1:5000/team/app:3f2a9c1
      sha256:5d41402abc4b2a76b9719d911017c592...
    """
    from gitops_cli.build import build_image

    settings = load_settings(repo, {
        "image": image, "context": _absolute(context), "dockerfile": _absolute(file),
        "build_args": build_arg, "labels": label,
    })
    if not settings.image:
        from gitops_cli.errors import UsageError

        raise UsageError("--image is required (the repository to build, without tag)",
                         hint="or set image in [tool.gitops] / GITOPS_IMAGE")
    result = build_image(
        settings.image, repo=repo, tag=tag, context=settings.context, dockerfile=settings.dockerfile,
        build_args=settings.build_args, labels=settings.labels, target=target, network=network,
        cache_from=cache_from, pull=pull, no_cache=no_cache, build_command=settings.build_command,
        tag_length=settings.tag_length, tag_prefix=settings.tag_prefix, allow_dirty=allow_dirty,
    )
    output.result(str(result.ref))
    output.result(result.image_id)
