"""How every verb that talks to a registry reaches it: one credential resolution (registry_username
included), the scheme and CAs chosen as dockerd chooses them, credential helpers that fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.gitremotes import make_bare_remote
from tests.fixtures.services import Registry
from tests.integration.test_bump_digest import push_minimal_image

pytestmark = pytest.mark.integration


def _app_dir(tmp_path: Path, config: str = "") -> Path:
    """A directory whose gitops.toml holds `config`, and an empty docker config beside it."""
    where = tmp_path / "app"
    where.mkdir()
    if config:
        (where / "gitops.toml").write_text(config)
    (tmp_path / "docker-config").mkdir()
    return where


def test_bump_and_rollback_use_the_config_files_registry_username(tmp_path: Path, auth_registry: Registry,
                                                                  gitops) -> None:
    """registry_username in gitops.toml worked for publish only: bump's digest look-up and rollback's
    check resolved credentials without it (exit 2, "set both GITOPS_REGISTRY_USERNAME and ...")."""
    creds = (auth_registry.username or "", auth_registry.password or "")
    name = f"{auth_registry.host}/team/app"
    d1 = push_minimal_image(auth_registry.url, "team/app", "v1", auth=creds)
    d2 = push_minimal_image(auth_registry.url, "team/app", "v2", auth=creds)
    remote = make_bare_remote(tmp_path / "r", {"app.yaml": f"containers:\n- name: app\n  image: {name}:v1@{d1}\n"})
    app = _app_dir(tmp_path, f'registry_username = "{creds[0]}"\n')
    env = {"DOCKER_CONFIG": str(tmp_path / "docker-config"), "GITOPS_REGISTRY_PASSWORD": creds[1]}

    res = gitops(["bump", "--deploy-repo", remote.url, "--image", f"{name}:v2"], cwd=app, env=env)
    assert res.returncode == 0, res.stderr
    assert remote.show("app.yaml").decode() == f"containers:\n- name: app\n  image: {name}:v2@{d2}\n"
    res = gitops(["rollback", "--deploy-repo", remote.url, "--image", name], cwd=app, env=env)
    assert res.returncode == 0, res.stderr
    assert remote.show("app.yaml").decode() == f"containers:\n- name: app\n  image: {name}:v1@{d1}\n"

    # the username's source is named, and the hint names only what the verb offers (no --password-stdin)
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", f"{name}:v2", "--dry-run"], cwd=app,
                 env={**env, "GITOPS_REGISTRY_PASSWORD": "wrong-password"})
    assert res.returncode == 13, res.stderr
    assert (f"for user 'ci-bot' (credentials from {app / 'gitops.toml'}: registry_username and "
            "GITOPS_REGISTRY_PASSWORD)") in res.stderr
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", f"{name}:v2", "--dry-run"], cwd=app,
                 env={**env, "GITOPS_REGISTRY_PASSWORD": ""})
    assert res.returncode == 2, res.stderr
    assert (f"error: app.yaml:3: needs the digest of {name}:v2: {app / 'gitops.toml'}: registry_username = "
            "'ci-bot': a registry username without a password\n") in res.stderr
    assert "hint: set GITOPS_REGISTRY_PASSWORD\n" in res.stderr


@pytest.mark.parametrize("verb", ["bump", "rollback"])
def test_the_no_credentials_hint_names_only_what_the_verb_offers(tmp_path: Path, auth_registry: Registry, gitops,
                                                                 verb: str) -> None:
    """bump and rollback have no --username/--password-stdin: their hint named them."""
    creds = (auth_registry.username or "", auth_registry.password or "")
    name = f"{auth_registry.host}/team/app"
    d1 = push_minimal_image(auth_registry.url, "team/app", "v1", auth=creds)
    push_minimal_image(auth_registry.url, "team/app", "v2", auth=creds)
    files = {"app.yaml": f"containers:\n- name: app\n  image: {name}:v2@{d1}\n"}
    remote = make_bare_remote(tmp_path / "r", files)
    app = _app_dir(tmp_path)
    env = {"DOCKER_CONFIG": str(tmp_path / "docker-config")}
    args = (["bump", "--deploy-repo", remote.url, "--image", f"{name}:v2"] if verb == "bump"
            else ["rollback", "--deploy-repo", remote.url, "--image", name, "--to", "v1"])
    res = gitops([*args, "--dry-run"], cwd=app, env=env)
    assert res.returncode == (13 if verb == "bump" else 9), res.stderr
    assert "authentication failed (no credentials found)" in res.stderr
    hint = [ln for ln in res.stderr.splitlines() if ln.startswith("hint:")]
    assert hint == ["hint: docker login, GITOPS_REGISTRY_USERNAME/_PASSWORD, or registry_username in the config "
                    "file with GITOPS_REGISTRY_PASSWORD"], res.stderr
