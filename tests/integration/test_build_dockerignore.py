"""`gitops build` leaves out of the build context what `docker build` leaves out for a `.dockerignore`.

The reference is the docker CLI with the legacy builder (`DOCKER_BUILDKIT=0 docker build`), which
applies `.dockerignore` itself before it sends the context; its engine then removes the Dockerfile and
the `.dockerignore` when the patterns match them.  Each context is built by it and by gitops with both
builders, and `COPY . /ctx/` must give the same files, with the same content.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.services import BASE_IMAGE, TEST_LABEL, TEST_LABEL_VALUE, commit_all, git

pytestmark = pytest.mark.integration

DOCKERFILE = f"FROM {BASE_IMAGE}\nLABEL {TEST_LABEL}={TEST_LABEL_VALUE}\nCOPY . /ctx/\n"
BUILDERS = {"buildkit": {}, "legacy": {"DOCKER_BUILDKIT": "0"}}

# name: (files, .dockerignore, Dockerfile path)
CASES: dict[str, tuple[list[bytes], bytes, str]] = {
    # the audit's case: `\` escapes are literal, `[^R]` is "not R"
    "escapes": ([b"a*b", b"axb", b"[x]", b"q?", b"qq", b"README.md", b"notes.md"],
                b".git\na\\*b\n\\[x]\nq\\?\n[^R]*.md\n", "Dockerfile"),
    # comments, blank lines, CRLF, a byte order mark; `/` and `./`; `**`; `!` inside an excluded directory,
    # which the walk enters only when an exclusion pattern starts with it; `{2}` goes through to the regexp
    "walk": ([b"a/b/c", b"a/d", b"e/f/g", b"logs/x.log", b"src/app.log", b"src/keep.txt", b"secret",
              b"sub/secret", b"build/out.o", b"xx", b"x{2}", b"notes.md"],
             b"\xef\xbb\xbf# comment\r\n\r\n.git\r\n/secret\r\n./build/\r\na\r\n!a/b\r\ne\r\n!*/f\r\n"
             b"**/*.log\r\n!src/app.log\r\n x{2}* \r\n", "Dockerfile"),
    # not UTF-8: patterns and names compared as bytes, an invalid byte read as U+FFFD by a regexp
    "not-utf8": ([b"caf\xe9.txt", b"caf\xc3\xa9.txt", b"caf\xef\xbf\xbd.log", b"x\xffy", b"keep"],
                 b".git\n# caf\xe9\ncaf\xe9.txt\ncaf\xe9.*\nx?y\n", "Dockerfile"),
    # the Dockerfile excluded with its directory: the engine removes it, an empty directory stays
    "dockerfile-excluded": ([b"docker/other", b"app.txt"], b".git\ndocker\n.dockerignore\n", "docker/Dockerfile"),
    # Docker 20.10's engine reads `(e)` as a regexp group: it removes the Dockerfile, later ones keep it
    "engine-versions": ([b"app.txt"], b".git\nDockerfil(e)\n", "Dockerfile"),
}


def make_context(path: Path, files: list[bytes], ignore: bytes, dockerfile: str) -> Path:
    path.mkdir(parents=True)
    root = os.fsencode(path)
    for name in files:
        full = os.path.join(root, name)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as file:
            file.write(b"content of " + name + b"\n")
    (path / ".dockerignore").write_bytes(ignore)
    (path / dockerfile).parent.mkdir(parents=True, exist_ok=True)
    (path / dockerfile).write_text(DOCKERFILE)
    git(path, "init", "-q", "-b", "main")
    commit_all(path, "context")
    return path


def copied(ref: str) -> list[bytes]:
    """What `COPY . /ctx/` copied into the image: every path, and a checksum of every file."""
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", ref, "sh", "-c",
                          "find /ctx; find /ctx -type f -exec md5sum {} +"], capture_output=True)
    assert out.returncode == 0, out.stderr
    return sorted(out.stdout.splitlines())


def remove_images(*refs: str) -> None:
    subprocess.run(["docker", "image", "rm", *refs], capture_output=True, check=False)


@pytest.mark.parametrize("case", list(CASES))
def test_the_context_is_what_docker_build_sends(gitops, tmp_path: Path, base_image: str, case: str) -> None:
    files, ignore, dockerfile = CASES[case]
    repo = make_context(tmp_path / "app", files, ignore, dockerfile)
    reference = f"gitops-test/ignore-reference:{case}"
    refs = [reference] + [f"gitops-test/ignore:{case}-{name}" for name in BUILDERS]
    try:
        res = subprocess.run(["docker", "build", "-q", "-t", reference, "-f", str(repo / dockerfile), str(repo)],
                             env={**os.environ, "DOCKER_BUILDKIT": "0"}, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        expected = copied(reference)
        for name, env in BUILDERS.items():
            res = gitops(["build", "--image", "gitops-test/ignore", "--tag", f"{case}-{name}", "--file", dockerfile],
                         cwd=repo, env=env)
            assert res.returncode == 0, res.stderr
            assert copied(f"gitops-test/ignore:{case}-{name}") == expected, (name, res.stderr)
    finally:
        remove_images(*refs)


def test_the_reference_cases_differ_where_they_should(gitops, tmp_path: Path, base_image: str) -> None:
    """The cases above check something: what docker copies for the audit's case, and the builder the
    engine-dependent case gets."""
    files, ignore, dockerfile = CASES["escapes"]
    repo = make_context(tmp_path / "app", files, ignore, dockerfile)
    res = gitops(["build", "--image", "gitops-test/ignore", "--tag", "escapes-check"], cwd=repo)
    try:
        assert res.returncode == 0 and "builder: BuildKit\n" in res.stderr, res.stderr
        names = {line.rsplit(b"/", 1)[-1] for line in copied("gitops-test/ignore:escapes-check") if b" " not in line}
        assert names == {b"ctx", b".dockerignore", b"Dockerfile", b"README.md", b"axb", b"qq"}
    finally:
        remove_images("gitops-test/ignore:escapes-check")
    files, ignore, dockerfile = CASES["engine-versions"]
    repo = make_context(tmp_path / "versions", files, ignore, dockerfile)
    res = gitops(["build", "--image", "gitops-test/ignore", "--tag", "versions-check"], cwd=repo)
    remove_images("gitops-test/ignore:versions-check")
    assert res.returncode == 0, res.stderr
    assert "builder: legacy (.dockerignore excludes the Dockerfile (Dockerfile) for some engine versions)" \
        in res.stderr


@pytest.mark.parametrize("trigger", ["label-with-line-break", "copy-keeps-dockerignore"])
def test_a_full_tmpdir_does_not_stop_the_api_labels_build(gitops, tmp_path: Path, base_image: str,
                                                          trigger: str) -> None:
    """The legacy builder's labels go through the build API when they cannot go into the Dockerfile (a
    value with a line break) or when `COPY .` may copy a `.dockerignore` that does not exclude itself;
    that context tar is made while it is sent too: a TMPDIR with no room for it (was exit 74) does not
    matter."""
    repo = make_context(tmp_path / "app", [b"big.bin"], b".git\n", "Dockerfile")
    (repo / "big.bin").write_bytes(os.urandom(256 * 1024))
    commit_all(repo, "a big file")
    label = ["--label", "note=two\nlines"] if trigger == "label-with-line-break" else []
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(tiny)], check=True)
    try:
        res = gitops(["build", "--image", "gitops-test/ignore", "--tag", f"full-tmpdir-{trigger}", *label],
                     cwd=repo, env={"TMPDIR": str(tiny), "DOCKER_BUILDKIT": "0"})
        assert res.returncode == 0, res.stderr
        assert list(tiny.iterdir()) == []
    finally:
        subprocess.run(["umount", str(tiny)], check=False)
        remove_images(f"gitops-test/ignore:full-tmpdir-{trigger}")


@pytest.mark.parametrize("builder", list(BUILDERS))
def test_a_dockerignore_docker_refuses_is_exit_2_naming_the_line(gitops, tmp_path: Path, base_image: str,
                                                                 builder: str) -> None:
    repo = make_context(tmp_path / "app", [b"app.txt"], b".git\n# fine\nsrc/[a-\n", "Dockerfile")
    res = gitops(["build", "--image", "gitops-test/ignore", "--tag", "refused"], cwd=repo, env=BUILDERS[builder])
    assert res.returncode == 2, res.stderr
    assert ".dockerignore line 3: `src/[a-`: syntax error in pattern (docker build fails on it too)" in res.stderr
    assert "Traceback" not in res.stderr
