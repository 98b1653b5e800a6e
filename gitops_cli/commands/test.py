"""`gitops test`: run the app's unit tests on the host or inside the built image."""

from __future__ import annotations

from pathlib import Path

import typer

from gitops_cli.settings import load_settings


def test(
    repo: Path = typer.Option(Path("."), "--repo", help="The app checkout (default: current directory)."),
    command: str | None = typer.Option(None, "--command", help="Test command (default: test_command, else "
                                       "`make test` when make finds a test target in the Makefile)."),
    in_image: str | None = typer.Option(None, "--in-image", metavar="NAME:TAG", help="Run the command inside "
                                        "this image (network none) instead of on the host."),
) -> None:
    """Run the app's tests; the command's output streams live and its exit status is gitops' status.

    \b
    Example:
      gitops test                                   # make test
      gitops test --in-image 127.0.0.1:5000/team/app:3f2a9c1
    """
    from gitops_cli.apptest import run_tests

    if in_image is not None:  # exit 2 before any work: a reference that is invalid, or the engine refuses
        from gitops_cli.engine import check_reference
        from gitops_cli.errors import InvalidReferenceError
        from gitops_cli.imageref import parse_tagged

        try:
            ref = parse_tagged(in_image)
        except InvalidReferenceError as exc:
            raise InvalidReferenceError(f"--in-image {in_image!r}: {exc.message}", hint=exc.hint) from None
        check_reference(ref, f"--in-image {in_image!r}")
    settings = load_settings(repo, {"test_command": command})
    run_tests(repo, command=settings.test_command, in_image=in_image)

