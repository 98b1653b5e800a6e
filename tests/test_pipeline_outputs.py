"""gitops_cli.pipeline's output files ($GITHUB_OUTPUT, --dotenv): checks before the run, how they are written."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gitops_cli import pipeline
from gitops_cli.errors import UsageError

OUTPUTS = {"tag": "abc1234", "image": "r.example/app:abc1234", "digest": "sha256:" + "0" * 64,
           "deploy-commit": ""}
DOTENV = f"TAG=abc1234\nIMAGE=r.example/app:abc1234\nDIGEST=sha256:{'0' * 64}\nDEPLOY_COMMIT=\n"


def test_check_output_path(tmp_path: Path) -> None:
    pipeline.check_output_path(tmp_path / "new.env", "--dotenv")  # a new file in an existing directory
    with pytest.raises(UsageError, match="no such directory"):
        pipeline.check_output_path(tmp_path / "nodir" / "x.env", "--dotenv")
    with pytest.raises(UsageError, match="is a directory"):
        pipeline.check_output_path(tmp_path, "--dotenv")
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="Not a directory"):
        pipeline.check_output_path(tmp_path / "file" / "x.env", "--dotenv")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "target.env")
    pipeline.check_output_path(dangling, "--dotenv")


def test_regular_file_replaced_atomically_symlink_followed(tmp_path: Path) -> None:
    real = tmp_path / "real.env"
    real.write_text("OLD=1\n")
    real.chmod(0o600)
    link = tmp_path / "link.env"
    link.symlink_to(real)
    pipeline.write_dotenv(link, OUTPUTS)
    assert link.is_symlink() and real.read_text() == DOTENV and (real.stat().st_mode & 0o777) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.env", "real.env"]


def test_github_output_is_appended(tmp_path: Path) -> None:
    out = tmp_path / "github-output"
    out.write_text("other=1\n")
    pipeline.write_github_output(out, OUTPUTS)
    assert out.read_text().startswith("other=1\ntag=abc1234\n")


def test_fifo_written_in_place_and_reset_leaves_it_alone(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    pipeline.reset_output_file(fifo)  # never opened (it would block)
    pipeline.write_dotenv(fifo, OUTPUTS)
    reader.join(timeout=10)
    assert got == [DOTENV] and fifo.is_fifo()


def test_reset_removes_a_regular_file_only_and_its_mode_goes_to_the_new_one(tmp_path: Path) -> None:
    """Removed, not emptied: a dotenv file in the app checkout is not there while the run checks, tags
    and builds the checkout (a re-run would refuse it as untracked, or build it into the image)."""
    stale = tmp_path / "stale.env"
    stale.write_text("TAG=old\n")
    stale.chmod(0o640)
    mode = pipeline.reset_output_file(stale)
    assert mode == 0o640 and not stale.exists()
    pipeline.write_dotenv(stale, OUTPUTS, mode)
    assert stale.read_text() == DOTENV and (stale.stat().st_mode & 0o777) == 0o640
    assert pipeline.reset_output_file(tmp_path / "missing.env") is None  # nothing to do
    assert not (tmp_path / "missing.env").exists()


def test_reset_through_a_symlink_removes_its_target_and_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real.env"
    real.write_text("TAG=old\n")
    link = tmp_path / "link.env"
    link.symlink_to(real)
    mode = pipeline.reset_output_file(link)
    assert link.is_symlink() and not real.exists()
    pipeline.write_dotenv(link, OUTPUTS, mode)
    assert link.is_symlink() and real.read_text() == DOTENV


@pytest.mark.skipif(os.geteuid() != 0, reason="bind-mounts a file")
def test_a_bind_mounted_file_is_emptied_and_written_in_place(tmp_path: Path, mounts: list[Path]) -> None:
    """`docker run -v $PWD/gitops.env:/ci/gitops.env`: a mount point can be neither removed nor replaced
    (EBUSY); it is emptied at the start and written in place at the end."""
    mounted = tmp_path / "gitops.env"
    mounted.write_text("TAG=old\n")
    subprocess.run(["mount", "--bind", str(mounted), str(mounted)], check=True, capture_output=True)
    mounts.append(mounted)
    assert pipeline.reset_output_file(mounted) is None and mounted.read_text() == ""
    pipeline.write_dotenv(mounted, OUTPUTS)
    assert mounted.read_text() == DOTENV and os.listdir(tmp_path) == ["gitops.env"]  # no temp file left


def test_prepare_removes_the_dotenv_file_also_when_github_output_is_refused(tmp_path: Path) -> None:
    dotenv = tmp_path / "gitops.env"
    dotenv.write_text("TAG=old\n")
    with pytest.raises(UsageError, match=r"^\$GITHUB_OUTPUT /nonexistent/out: no such directory"):
        pipeline.prepare_output_files("/nonexistent/out", dotenv)
    assert not dotenv.exists()


def test_prepare_leaves_the_file_that_is_github_output_too(tmp_path: Path) -> None:
    same = tmp_path / "same"
    same.write_text("earlier=step\n")
    with pytest.raises(UsageError, match="is \\$GITHUB_OUTPUT too"):
        pipeline.prepare_output_files(str(same), same)
    assert same.read_text() == "earlier=step\n"


def test_reset_leaves_what_dev_stdout_leads_to(tmp_path: Path) -> None:
    """`--dotenv /dev/stdout >> log`: /dev/stdout leads to the user's log, a regular file; not emptied."""
    log = tmp_path / "log.txt"
    log.write_text("previous run\n")
    code = "from gitops_cli import pipeline; pipeline.reset_output_file('/dev/stdout')"
    with log.open("a") as out:
        subprocess.run([sys.executable, "-c", code], stdout=out, check=True)
    assert log.read_text() == "previous run\n"


def test_refused_write_is_an_error_not_an_exception(tmp_path: Path) -> None:
    if not Path("/dev/full").is_char_device():
        pytest.skip("no /dev/full")
    errors = pipeline.write_outputs(OUTPUTS, None, "/dev/full")
    assert [(e.exit_code, e.message) for e in errors] == [(74, "cannot write /dev/full: No space left on device")]
    assert Path("/dev/full").is_char_device()


def test_the_tty_summary_keeps_each_value_on_one_line_on_a_narrow_terminal() -> None:
    """A digest copied from the terminal must not hold a line break (rich folded it at 80 columns)."""
    import io

    from rich.console import Console

    from gitops_cli.imageref import parse

    result = pipeline.PipelineResult(tag="abc1234", sha="a" * 40, digest="sha256:" + "5f" * 32,
                                     ref=parse("registry.example.com:5000/some-team/some-long-app-name:abc1234"))
    out = io.StringIO()
    pipeline.render_rich(result, Console(file=out, width=60, force_terminal=True, color_system=None))
    lines = out.getvalue().splitlines()
    assert f"digest         {result.digest}" in lines
    assert f"image          {result.ref}" in lines
