"""Deploy-repo problems that can be seen without any network are refused by `bump.reach`, which
build-and-bump calls before its first step: nothing is tested, built or published."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.gitremotes import make_bare_remote
from tests.fixtures.services import Registry, sample_app
from tests.integration.test_pipeline import GITOPS_TOML, PATH, deploy_files, tags

pytestmark = pytest.mark.integration


@pytest.fixture
def app(tmp_path: Path, base_image: str) -> Path:
    return sample_app(tmp_path / "app", extra_files={"gitops.toml": GITOPS_TOML})


def test_missing_file_url_is_refused_before_any_work(gitops, app: Path, registry: Registry, tmp_path: Path) -> None:
    missing = (tmp_path / "nonexistent.git").as_uri()
    res = gitops(["build-and-bump", "--image", registry.image(PATH), "--deploy-repo", missing], cwd=app)
    assert res.returncode == 2, res.stderr
    assert f"--deploy-repo {str(missing)!r}: no such directory" in res.stderr
    assert "running sample tests" not in res.stderr and tags(registry) == []


def test_dirty_local_checkout_is_refused_before_any_work(gitops, app: Path, registry: Registry,
                                                         tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path / "remotes", deploy_files(registry.image(PATH)))
    checkout = remote.clone(tmp_path / "deploy")
    (checkout / "README.md").write_text("edited by hand\n")
    res = gitops(["build-and-bump", "--image", registry.image(PATH), "--deploy-repo", str(checkout)], cwd=app)
    assert res.returncode == 4, res.stderr
    assert "uncommitted changes (README.md)" in res.stderr
    assert "running sample tests" not in res.stderr and tags(registry) == [] and len(remote.log()) == 1
