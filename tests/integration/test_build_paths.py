"""`gitops build` in a monorepo and with a dirty tree: where the build command runs, what config paths are
relative to, the revision label, and Dockerfile line numbers in errors (real engine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.services import BASE_IMAGE, DOCKERFILE, MAKEFILE, TEST_LABEL, TEST_LABEL_VALUE, commit_all, git

pytestmark = pytest.mark.integration


def monorepo(tmp_path: Path, config: str) -> Path:
    """mono/ (the git top level, with no Makefile) holding apps/foo with its own Makefile and gitops.toml."""
    mono = tmp_path / "mono"
    app = mono / "apps" / "foo"
    (app / "docker").mkdir(parents=True)
    (app / "src").mkdir()
    (app / "Makefile").write_text(MAKEFILE)
    (app / "docker" / "App.dockerfile").write_text(DOCKERFILE.replace("COPY app.sh test.sh /app/", "COPY app.sh /app/")
                                                   .replace('CMD ["/app/app.sh"]', 'CMD ["/app/app.sh"]\n'))
    (app / "src" / "app.sh").write_text("#!/bin/sh\necho foo\n")
    (app / "gitops.toml").write_text(config)
    (mono / ".gitignore").write_text("build-output.txt\n")
    git(mono, "init", "-q", "-b", "main")
    commit_all(mono, "monorepo")
    return mono


CONFIG = 'image = "gitops-test/foo"\nbuild_command = "make build"\ncontext = "src"\n' \
         'dockerfile = "docker/App.dockerfile"\n'


@pytest.mark.parametrize("where", ["root", "app"])
def test_monorepo_app_builds_in_its_directory(gitops, tmp_path: Path, base_image: str, docker_engine,
                                             where: str) -> None:
    mono = monorepo(tmp_path, CONFIG)
    app = mono / "apps" / "foo"
    args, cwd = (["build", "--repo", "apps/foo"], mono) if where == "root" else (["build"], app)
    res = gitops(args, cwd=cwd)
    assert res.returncode == 0, res.stderr
    # build_command ran where `gitops test` runs the tests: the app directory, not the git top level
    assert (app / "build-output.txt").read_text() == "app build ran\n"
    assert not (mono / "build-output.txt").exists()
    # the config's dockerfile is relative to the app checkout, not to the context (src/docker/... is absent)
    ref = res.stdout.splitlines()[0]
    assert docker_engine.inspect_image(ref)["Config"]["Labels"][TEST_LABEL] == TEST_LABEL_VALUE


def test_file_flag_is_relative_to_the_cwd(gitops, tmp_path: Path, base_image: str) -> None:
    mono = monorepo(tmp_path, 'image = "gitops-test/foo"\ncontext = "src"\n')
    res = gitops(["build", "--repo", "apps/foo", "--file", "apps/foo/docker/App.dockerfile"], cwd=mono)
    assert res.returncode == 0, res.stderr


def test_explicit_tag_refuses_a_dirty_tree(gitops, app_repo: Path, docker_engine) -> None:
    (app_repo / "app.sh").write_text("#!/bin/sh\necho uncommitted\n")
    res = gitops(["build", "--image", "gitops-test/app", "--tag", "dirty1"], cwd=app_repo)
    assert res.returncode == 4, res.stderr
    assert "app.sh" in res.stderr and docker_engine.images(name="gitops-test/app:dirty1") == []


def test_allow_dirty_build_has_an_empty_revision_label(gitops, app_repo: Path, docker_engine) -> None:
    (app_repo / "app.sh").write_text("#!/bin/sh\necho uncommitted\n")
    for args in (["--tag", "dirty2"], []):
        res = gitops(["build", "--image", "gitops-test/app", "--allow-dirty", *args], cwd=app_repo)
        assert res.returncode == 0, res.stderr
        labels = docker_engine.inspect_image(res.stdout.splitlines()[0])["Config"]["Labels"]
        assert labels["org.opencontainers.image.revision"] == ""  # the content is no commit
        assert "org.opencontainers.image.revision label is empty" in res.stderr


def test_parse_error_line_is_the_users_line_with_a_target(gitops, tmp_path: Path, base_image: str) -> None:
    from tests.fixtures.services import sample_app

    text = f"FROM {BASE_IMAGE} AS a\nLABEL {TEST_LABEL}={TEST_LABEL_VALUE}\nFROM a AS b\nBADINSTR x\n"
    repo = sample_app(tmp_path / "app", dockerfile=text)
    res = gitops(["build", "--image", "gitops-test/app", "--target", "a"], cwd=repo)
    assert res.returncode == 5, res.stderr
    assert "line 4" in res.stderr and "line 5" not in res.stderr
