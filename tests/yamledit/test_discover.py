"""yamledit.discover: which files are read, and byte-exact read / atomic write."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gitops_cli.errors import UsageError
from gitops_cli.yamledit import discover, read_text, write_atomic


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    files = {
        "b.yaml": "a: 1\n", "a.yml": "a: 1\n", "notes.txt": "x", "z/deep/c.yaml": "c: 1\n",
        "apps/app.yaml": "a: 1\n", ".git/config.yaml": "a: 1\n", "apps-x/d.yaml": "d: 1\n",
    }
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    (tmp_path / "binary.yaml").write_bytes(b"a: 1\n\0\0")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "evil.yaml").write_text("a: 1\n")
    (tmp_path / "link.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "linkdir").symlink_to(outside)
    os.mkfifo(tmp_path / "fifo.yaml")
    return tmp_path


def rel(root: Path, paths) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def test_discover_skips_git_symlinks_binaries_and_non_regular_files(tree: Path):
    assert rel(tree, discover(tree)) == ["a.yml", "apps/app.yaml", "apps-x/d.yaml", "b.yaml", "z/deep/c.yaml"]


def test_subpaths_stay_inside_and_never_through_symlinks(tree: Path):
    assert rel(tree, discover(tree, ["apps", "z", "apps/app.yaml", "./z/deep"])) == [
        "apps/app.yaml", "z/deep/c.yaml"]
    for bad in ["..", "../x", "linkdir", "link.yaml", str(tree.parent), "missing"]:
        with pytest.raises(UsageError):
            list(discover(tree, [bad]))


def test_an_empty_subpath_is_refused_not_the_whole_tree(tree: Path):
    """normpath("") is ".": `--path "$DIR"` with DIR empty looked at every file (bump: every environment)."""
    from gitops_cli.yamledit.discover import relative_subpath

    assert relative_subpath(tree, ".") == Path(".")  # the whole tree when asked for
    with pytest.raises(UsageError, match=r"^--path '': empty value; give a directory of the repository"):
        relative_subpath(tree, "")
    with pytest.raises(UsageError, match=r"^--path '': empty value"):
        list(discover(tree, ["apps", ""]))


def test_read_and_write_keep_every_byte(tmp_path: Path):
    path = tmp_path / "f.yaml"
    raw = "\ufeffa: 1\r\nb: é  \r\nc: 2".encode()
    path.write_bytes(raw)
    path.chmod(0o640)
    text = read_text(path)
    assert text.startswith("\ufeff") and "\r\n" in text
    write_atomic(path, text.replace("c: 2", "c: 3"))
    assert path.read_bytes() == raw.replace(b"c: 2", b"c: 3")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.yaml"]  # no temp file left


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_write_as_root_keeps_the_files_owner_and_group(tmp_path: Path):
    """Root editing another user's file (a CI container on the runner's checkout) left it root's own."""
    path = tmp_path / "f.yaml"
    path.write_text("a: 1\n")
    os.chown(path, 1234, 2345)
    path.chmod(0o2640)  # a set-id bit survives: the chown comes before the chmod
    write_atomic(path, "a: 2\n")
    st = path.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 2345, 0o2640)
    assert path.read_text() == "a: 2\n"
    new = tmp_path / "new.yaml"  # a new file is the process's own
    write_atomic(new, "a: 1\n")
    assert (new.stat().st_uid, new.stat().st_gid) == (os.geteuid(), os.getegid())


@pytest.fixture
def interrupts_installed(monkeypatch: pytest.MonkeyPatch):
    """gitops' interrupt handling as the console script installs it, for this test only."""
    import signal

    from gitops_cli import interrupts

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    monkeypatch.setitem(interrupts._state, "installed", False)
    monkeypatch.setitem(interrupts._state, "name", None)
    interrupts.install()
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_an_interrupt_once_the_temp_file_exists_leaves_no_temp_file(tmp_path: Path, interrupts_installed,
                                                                   monkeypatch: pytest.MonkeyPatch):
    """Ctrl-C (or a CI job's SIGTERM) right after the temp file is made: the interrupt waits for the rename,
    then ends the run; no `.f.yaml.XXXXXXXX.tmp` is left in the checkout (`git add -A` would commit it)."""
    import signal
    import tempfile

    made = tempfile.mkstemp

    def mkstemp_then_interrupted(*args, **kwargs):
        found = made(*args, **kwargs)
        signal.raise_signal(signal.SIGTERM)
        return found

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp_then_interrupted)
    path = tmp_path / "f.yaml"
    path.write_text("a: 1\n")
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, "a: 2\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.yaml"]
    assert path.read_text() == "a: 2\n"  # the write it had begun went through whole


def test_a_failed_write_leaves_no_temp_file(tmp_path: Path):
    path = tmp_path / "f.yaml"
    path.write_text("a: 1\n")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(path, "a: \udc80\n")  # a lone surrogate: no UTF-8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.yaml"]
    assert path.read_text() == "a: 1\n"

