"""`gitops build`: build the app image with OCI labels and live logs; print NAME:TAG and the image id."""

from __future__ import annotations

from pathlib import Path

from gitops_cli import output
from gitops_cli.commands.options import (
    AllowDirty,
    BuildArgs,
    BuildImage,
    CacheFrom,
    Context,
    Dockerfile,
    Labels,
    Network,
    NoCache,
    Pull,
    Repo,
    Tag,
    Target,
    absolute,
    require_build_image,
)
from gitops_cli.settings import load_settings


def build(
    image: BuildImage = None,
    tag: Tag = None,
    repo: Repo = Path("."),
    context: Context = None,
    file: Dockerfile = None,
    build_arg: BuildArgs = [],
    label: Labels = [],
    target: Target = None,
    network: Network = None,
    cache_from: CacheFrom = [],
    pull: Pull = False,
    no_cache: NoCache = False,
    allow_dirty: AllowDirty = False,
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
        "image": image, "context": absolute(context), "dockerfile": absolute(file),
        "build_args": build_arg, "labels": label,
    })
    image_name = require_build_image(settings.image, settings.names)
    result = build_image(
        image_name, repo=repo, tag=tag, context=settings.context, dockerfile=settings.dockerfile,
        build_args=settings.build_args, labels=settings.labels, target=target, network=network,
        cache_from=cache_from, pull=pull, no_cache=no_cache, build_command=settings.build_command,
        allow_dirty=allow_dirty, names=settings.names,
        # the tag settings only when the tag is derived: a bad one does not stop `--tag X`
        tag_length=settings.tag_length if tag is None else 7, tag_prefix=settings.tag_prefix if tag is None else "",
    )
    output.result(str(result.ref), trusted=True)
    output.result(result.image_id, trusted=True)
