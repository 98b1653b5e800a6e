"""`gitops bump` end to end against a bare deploy repo over file:// (and local checkouts)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.fixtures.gitremotes import SEED_FILES, DeployRemote, git, make_bare_remote

pytestmark = pytest.mark.integration

API = "registry.example.com/team/api"
API_FILE = "apps/api/deployment.yaml"


def no_identity_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment with no git identity at all: empty HOME, no system config."""
    home = tmp_path / "empty-home"
    home.mkdir(exist_ok=True)
    return {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "TMPDIR": str(_tmpdir(tmp_path)),
        **extra,
    }


def _tmpdir(tmp_path: Path) -> Path:
    d = tmp_path / "gitops-tmp"
    d.mkdir(exist_ok=True)
    return d


def api_expected(tag: str) -> bytes:
    """The seed API manifest with exactly the two image values' tags changed (args/comments untouched)."""
    text = SEED_FILES[API_FILE]
    old_init = f"image: {API}:1.0.0   # same image"
    old_main = f'image: "{API}:1.0.0" # pinned by CI'
    assert text.count(old_init) == 1 and text.count(old_main) == 1
    text = text.replace(old_init, f"image: {API}:{tag}   # same image")
    text = text.replace(old_main, f'image: "{API}:{tag}" # pinned by CI')
    return text.encode()


def test_bump_commits_exactly_the_image_values(deploy_remote: DeployRemote, gitops, tmp_path: Path) -> None:
    before = deploy_remote.head()
    res = gitops(
        ["bump", "--deploy-repo", deploy_remote.url, "--image", f"{API}:2.0.0"], env=no_identity_env(tmp_path)
    )
    assert res.returncode == 0, res.stderr
    sha = res.stdout.strip()
    assert sha == deploy_remote.head()
    assert deploy_remote.git("rev-parse", f"{sha}~1").strip() == before  # exactly one new commit on top
    assert deploy_remote.changed_files() == [API_FILE]
    assert deploy_remote.show(API_FILE) == api_expected("2.0.0")
    for rel, content in SEED_FILES.items():  # every other byte of the repo is untouched
        if rel != API_FILE:
            assert deploy_remote.show(rel) == content.encode(), rel
    assert deploy_remote.message() == (f"Update {API} image to {API}:2.0.0\n\nImage: {API}:2.0.0\n\n")
    assert deploy_remote.log("%an <%ae>|%cn <%ce>")[0] == (
        "gitops-cli <gitops-cli@localhost>|gitops-cli <gitops-cli@localhost>"
    )
    assert f"{API_FILE}:13:" in res.stderr and f"{API_FILE}:18:" in res.stderr
    assert list(_tmpdir(tmp_path).iterdir()) == []  # the temporary clone is gone


def test_git_identity_variables_of_the_environment_are_honoured(deploy_remote: DeployRemote, gitops,
                                                                 tmp_path: Path) -> None:
    """GIT_AUTHOR_* / GIT_COMMITTER_* (a CI script's git identity, no config file) were overwritten by
    gitops-cli <gitops-cli@localhost>.  They come after --author / GITOPS_AUTHOR, before git config."""
    ci = {"GIT_AUTHOR_NAME": "CI Bot", "GIT_AUTHOR_EMAIL": "ci@example.com",
          "GIT_COMMITTER_NAME": "CI Runner", "GIT_COMMITTER_EMAIL": "runner@example.com"}
    res = gitops(["bump", "--deploy-repo", deploy_remote.url, "--image", f"{API}:2.0.2"],
                 env=no_identity_env(tmp_path, **ci))
    assert res.returncode == 0, res.stderr
    assert deploy_remote.log("%an <%ae>|%cn <%ce>")[0] == "CI Bot <ci@example.com>|CI Runner <runner@example.com>"
    res = gitops(["bump", "--deploy-repo", deploy_remote.url, "--image", f"{API}:2.0.3"],
                 env=no_identity_env(tmp_path, GITOPS_AUTHOR="Deploy Bot <bot@example.com>",
                                     GIT_AUTHOR_NAME="CI Bot", GIT_AUTHOR_EMAIL="ci@example.com"))
    assert res.returncode == 0, res.stderr  # GITOPS_AUTHOR first; the committer is the author
    assert deploy_remote.log("%an <%ae>|%cn <%ce>")[0] == "Deploy Bot <bot@example.com>|Deploy Bot <bot@example.com>"


def test_no_known_secret_goes_into_the_commit_message(deploy_remote: DeployRemote, gitops, tmp_path: Path) -> None:
    """GITOPS_CI_RUN_URL holding the token (`?access_token=$TOK`) went into the CI-Run trailer, pushed for good."""
    token = "ghp_CommitTrailerToken42"
    env = no_identity_env(tmp_path, GITOPS_GIT_TOKEN=token,
                          GITOPS_CI_RUN_URL=f"https://ci.example.com/run/7?access_token={token}",
                          GITOPS_SOURCE_COMMIT="d" * 40)
    res = gitops(["bump", "--deploy-repo", deploy_remote.url, "--image", f"{API}:2.0.1",
                  "--message", f"deploy {{tag}} (by {token})"], env=env)
    assert res.returncode == 0, res.stderr
    assert deploy_remote.message() == (
        "deploy 2.0.1 (by ***)\n\n"
        f"Image: {API}:2.0.1\n"
        f"Source-Commit: {'d' * 40}\n"
        "CI-Run: https://ci.example.com/run/7\n\n"
    )


def test_author_message_template_and_ci_trailers(deploy_remote: DeployRemote, gitops, tmp_path: Path) -> None:
    env = no_identity_env(
        tmp_path,
        GITOPS_AUTHOR="Deploy Bot <bot@example.com>",
        GITHUB_ACTIONS="true",
        GITHUB_SHA="c" * 40,
        GITHUB_SERVER_URL="https://github.com",
        GITHUB_REPOSITORY="org/app",
        GITHUB_RUN_ID="77",
    )
    res = gitops(
        [
            "bump",
            "--deploy-repo",
            deploy_remote.url,
            "--image",
            "registry.example.com/team/worker:v9",
            "--message",
            "chore(worker): {tag} (was {old})",
        ],
        env=env,
    )
    assert res.returncode == 0, res.stderr
    assert deploy_remote.message() == (
        "chore(worker): v9 (was 1.0.0)\n\n"  # {old}: the value as `history` shows it
        "Image: registry.example.com/team/worker:v9\n"
        f"Source-Commit: {'c' * 40}\n"
        "CI-Run: https://github.com/org/app/actions/runs/77\n\n"
    )
    assert deploy_remote.log("%an <%ae>")[0] == "Deploy Bot <bot@example.com>"
    res = gitops(
        [
            "bump",
            "--deploy-repo",
            deploy_remote.url,
            "--image",
            "registry.example.com/team/worker:v10",
            "--author",
            "Flag Person <flag@example.com>",
        ],
        env=env,
    )
    assert res.returncode == 0, res.stderr
    assert deploy_remote.log("%an <%ae>")[0] == "Flag Person <flag@example.com>"


def test_a_jenkins_pull_request_names_its_own_branch(deploy_remote: DeployRemote, gitops, tmp_path: Path) -> None:
    """BRANCH_NAME/GIT_BRANCH of a Jenkins PR build is the job's name (PR-5): the Source-Branch trailer
    was `PR-5`; it is the PR's own branch, CHANGE_BRANCH, as the README promises."""
    env = no_identity_env(tmp_path, JENKINS_URL="http://j/", BUILD_URL="http://j/job/app/PR-5/3/",
                          GIT_COMMIT="c" * 40, GIT_BRANCH="PR-5", BRANCH_NAME="PR-5", CHANGE_ID="5",
                          CHANGE_BRANCH="pr-branch")
    res = gitops(["bump", "--deploy-repo", deploy_remote.url, "--image", f"{API}:2.0.1"], env=env)
    assert res.returncode == 0, res.stderr
    assert deploy_remote.message().endswith(f"Source-Commit: {'c' * 40}\nSource-Branch: pr-branch\n"
                                            "CI-Run: http://j/job/app/PR-5/3/\n\n")


@pytest.mark.parametrize(("ci_env", "branch_trailer"), [
    ({"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/tags/v1.2.0",
      "GITHUB_REF_NAME": "v1.2.0", "GITHUB_REF_TYPE": "tag"}, ""),
    ({"GITLAB_CI": "true", "CI_COMMIT_REF_NAME": "v1.2.0", "CI_COMMIT_TAG": "v1.2.0"}, ""),
    ({"JENKINS_URL": "http://j/", "GIT_BRANCH": "origin/main"}, "Source-Branch: main\n"),
], ids=["github-tag", "gitlab-tag", "jenkins-origin-main"])
def test_source_branch_trailer_is_a_branch(deploy_remote: DeployRemote, gitops, tmp_path: Path,
                                           ci_env: dict[str, str], branch_trailer: str) -> None:
    """A tag pipeline's ref name went into the trailers as `Source-Branch: v1.2.0`, and a Jenkins job's
    GIT_BRANCH with its remote, `Source-Branch: origin/main`."""
    sha = "c" * 40
    commit = {"GITHUB_SHA": sha} if "GITHUB_ACTIONS" in ci_env else (
        {"CI_COMMIT_SHA": sha} if "GITLAB_CI" in ci_env else {"GIT_COMMIT": sha})
    env = no_identity_env(tmp_path, **ci_env, **commit)
    res = gitops(["bump", "--deploy-repo", deploy_remote.url, "--image", f"{API}:2.0.2"], env=env)
    assert res.returncode == 0, res.stderr
    assert deploy_remote.message().endswith(f"Source-Commit: {sha}\n{branch_trailer}\n")


def test_several_images_one_commit(deploy_remote: DeployRemote, gitops, tmp_path: Path) -> None:
    images = [
        f"{API}:3.0.0",
        "registry.example.com/team/web:3.0.0",
        "registry.example.com/team/frontend:3.0.0",
    ]
    args = ["bump", "--deploy-repo", deploy_remote.url]
    for image in images:
        args += ["--image", image]
    res = gitops(args, env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert len(deploy_remote.log()) == 2
    assert sorted(deploy_remote.changed_files()) == [
        API_FILE,
        "apps/web/kustomization.yaml",
        "charts/frontend/values.yaml",
    ]
    message = deploy_remote.message()
    assert message.startswith("Update 3 images\n\n")
    for image in images:
        assert f"Image: {image}\n" in message
    assert b'newTag: "3.0.0"   # bumped by CI' in deploy_remote.show("apps/web/kustomization.yaml")
    assert b'  tag: "3.0.0"\n' in deploy_remote.show("charts/frontend/values.yaml")


def test_already_up_to_date_makes_no_commit(deploy_remote: DeployRemote, gitops, tmp_path: Path) -> None:
    args = ["bump", "--deploy-repo", deploy_remote.url, "--image", f"{API}:2.0.0"]
    assert gitops(args, env=no_identity_env(tmp_path)).returncode == 0
    head = deploy_remote.head()
    res = gitops(args, env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert res.stdout == "" and "already up to date" in res.stderr  # no commit: nothing for $(...)
    assert deploy_remote.head() == head
    assert "Pushing" not in res.stderr


def test_dry_run_prints_diff_and_changes_nothing(deploy_remote: DeployRemote, gitops, tmp_path: Path) -> None:
    before = deploy_remote.head()
    res = gitops(
        ["bump", "--deploy-repo", deploy_remote.url, "--image", f"{API}:2.0.0", "--dry-run"],
        env=no_identity_env(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    assert deploy_remote.head() == before
    assert deploy_remote.git("for-each-ref", "--format=%(refname)").split() == ["refs/heads/main"]
    lines = res.stdout.splitlines()
    assert lines[:3] == [f"diff --git a/{API_FILE} b/{API_FILE}", f"--- a/{API_FILE}", f"+++ b/{API_FILE}"]
    assert [ln for ln in lines if ln.startswith(("-", "+")) and not ln.startswith(("---", "+++"))] == [
        f"-          image: {API}:1.0.0   # same image, runs migrations",
        f"+          image: {API}:2.0.0   # same image, runs migrations",
        f'-          image: "{API}:1.0.0" # pinned by CI',
        f'+          image: "{API}:2.0.0" # pinned by CI',
    ]
    assert "\033[" not in res.stdout  # no colour when stdout is not a terminal
    assert list(_tmpdir(tmp_path).iterdir()) == []


def test_no_commit_patches_a_local_checkout(deploy_remote: DeployRemote, gitops, tmp_path: Path) -> None:
    checkout = deploy_remote.clone(tmp_path / "checkout")
    head = git("rev-parse", "HEAD", cwd=checkout).strip()
    res = gitops(
        ["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0", "--no-commit"],
        env=no_identity_env(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [API_FILE]
    assert (checkout / API_FILE).read_bytes() == api_expected("2.0.0")
    assert git("rev-parse", "HEAD", cwd=checkout).strip() == head
    assert git("status", "--porcelain", cwd=checkout).splitlines() == [f" M {API_FILE}"]
    assert deploy_remote.head() == head


def test_no_commit_needs_a_local_checkout(deploy_remote: DeployRemote, gitops, tmp_path: Path) -> None:
    """The value is named as given: a bare repository's relative path was shown as the file:// URL it is
    cloned from (`--deploy-repo 'file:///tmp/.../deploy.git'` for `../deploy.git`)."""
    res = gitops(
        ["bump", "--deploy-repo", deploy_remote.url, "--image", f"{API}:2.0.0", "--no-commit"],
        env=no_identity_env(tmp_path),
    )
    assert res.returncode == 2 and res.stderr.startswith(
        f"error: --deploy-repo {deploy_remote.url!r}: --no-commit needs a local checkout (a path), not a URL\n")
    here = tmp_path / "here"
    here.mkdir()
    given = os.path.relpath(deploy_remote.path, here)
    res = gitops(["bump", "--deploy-repo", given, "--image", f"{API}:2.0.0", "--no-commit"], cwd=here,
                 env=no_identity_env(tmp_path))
    assert res.returncode == 2 and res.stderr.startswith(
        f"error: --deploy-repo {given!r}: --no-commit needs a local checkout (a path), not a bare repository\n")


def test_local_checkout_commits_and_pushes_to_origin(
    deploy_remote: DeployRemote, gitops, tmp_path: Path
) -> None:
    checkout = deploy_remote.clone(tmp_path / "checkout")
    deploy_remote.commit_change("unrelated.txt", "moved on\n")  # the checkout is now behind origin
    res = gitops(
        ["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"], env=no_identity_env(tmp_path)
    )
    assert res.returncode == 0, res.stderr
    assert deploy_remote.head() == res.stdout.strip() == git("rev-parse", "HEAD", cwd=checkout).strip()
    assert deploy_remote.show(API_FILE) == api_expected("2.0.0")
    assert deploy_remote.show("unrelated.txt") == b"moved on\n"
    assert git("rev-parse", "--is-shallow-repository", cwd=checkout).strip() == "false"


def test_local_linked_worktree_is_fast_forwarded_with_its_files(
    deploy_remote: DeployRemote, gitops, tmp_path: Path
) -> None:
    """In a `git worktree` `.git` is a file: the fast-forward must still update the files, or the bump
    would commit the old content over the remote's newer change."""
    first = deploy_remote.clone(tmp_path / "first")
    git("switch", "--quiet", "-c", "elsewhere", cwd=first)  # main is free for the linked worktree
    worktree = tmp_path / "wt"
    git("worktree", "add", "--quiet", str(worktree), "main", cwd=first)
    assert (worktree / ".git").is_file()
    changed = SEED_FILES[API_FILE] + "# changed by someone else\n"
    deploy_remote.commit_change(API_FILE, changed)  # the worktree is now behind origin, in the bumped file
    res = gitops(["bump", "--deploy-repo", str(worktree), "--image", f"{API}:2.0.0"], env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert deploy_remote.show(API_FILE) == changed.replace(f"{API}:1.0.0", f"{API}:2.0.0").replace(
        f'"--image={API}:2.0.0"', f'"--image={API}:1.0.0"').encode()


def test_local_checkout_must_be_clean(deploy_remote: DeployRemote, gitops, tmp_path: Path) -> None:
    checkout = deploy_remote.clone(tmp_path / "checkout")
    (checkout / "README.md").write_text("edited\n")
    res = gitops(
        ["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"], env=no_identity_env(tmp_path)
    )
    assert res.returncode == 4, res.stderr
    assert (checkout / API_FILE).read_bytes() == SEED_FILES[API_FILE].encode()


def test_output_json_lists_every_change(deploy_remote: DeployRemote, gitops, tmp_path: Path) -> None:
    res = gitops(
        ["bump", "--deploy-repo", deploy_remote.url, "--image", f"{API}:2.0.0", "--output", "json"],
        env=no_identity_env(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["pushed"] is True and data["commit"] == deploy_remote.head() and data["up_to_date"] is False
    assert data["files"] == [API_FILE] and data["branch"] == "main"
    changes = [{k: c[k] for k in ("file", "line", "column")} for c in data["changes"]]
    assert changes == [
        {"file": API_FILE, "line": 13, "column": 18},
        {"file": API_FILE, "line": 18, "column": 18},
    ]
    for change in data["changes"]:
        assert "1.0.0" in change["old"] and "2.0.0" in change["new"] and change["image"]


def test_push_branch_leaves_the_base_branch_alone(
    deploy_remote: DeployRemote, gitops, tmp_path: Path
) -> None:
    before = deploy_remote.head()
    res = gitops(
        [
            "bump",
            "--deploy-repo",
            deploy_remote.url,
            "--image",
            f"{API}:2.0.0",
            "--push-branch",
            "bump/api-2.0.0",
        ],
        env=no_identity_env(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    assert deploy_remote.head() == before
    assert deploy_remote.head("bump/api-2.0.0") == res.stdout.strip()
    assert deploy_remote.git("rev-parse", "bump/api-2.0.0~1").strip() == before
    assert deploy_remote.show(API_FILE, "bump/api-2.0.0") == api_expected("2.0.0")
    # A re-run finds the review branch already carries the bump: nothing new is pushed.
    again = gitops(
        [
            "bump",
            "--deploy-repo",
            deploy_remote.url,
            "--image",
            f"{API}:2.0.0",
            "--push-branch",
            "bump/api-2.0.0",
        ],
        env=no_identity_env(tmp_path),
    )
    assert again.returncode == 0, again.stderr
    assert deploy_remote.head("bump/api-2.0.0") == res.stdout.strip()
    # ... and says so at once: no rejected push, no retry, so --retries 0 is no failure
    assert "push rejected" not in again.stderr and again.stdout == "" and "already up to date" in again.stderr
    args = ["bump", "--deploy-repo", deploy_remote.url, "--push-branch", "bump/api-2.0.0", "--retries", "0"]
    strict = gitops([*args, "--image", f"{API}:2.0.0"], env=no_identity_env(tmp_path))
    assert strict.returncode == 0 and strict.stdout == "" and "already up to date" in strict.stderr, strict.stderr
    # a new bump to the existing branch stacks on its head (not on the base branch's)
    stacked = gitops([*args, "--image", f"{API}:2.1.0"], env=no_identity_env(tmp_path))
    assert stacked.returncode == 0 and "push rejected" not in stacked.stderr, stacked.stderr
    assert deploy_remote.git("rev-parse", "bump/api-2.0.0~1").strip() == res.stdout.strip()
    assert deploy_remote.head() == before


def test_a_bump_run_from_a_git_hook_works_on_its_own_clone(deploy_remote: DeployRemote, gitops,
                                                             tmp_path: Path) -> None:
    """git exports GIT_DIR (and more) to hooks: a bump run from one wrote the clone's sparse-checkout
    settings into the repository GIT_DIR named (here the remote itself) and failed."""
    config_before = (deploy_remote.path / "config").read_text()
    hook_env = {**no_identity_env(tmp_path), "GIT_DIR": str(deploy_remote.path), "GIT_INDEX_FILE": "index",
                "GIT_WORK_TREE": str(tmp_path), "GIT_QUARANTINE_PATH": str(tmp_path / "q")}
    res = gitops(["bump", "--deploy-repo", deploy_remote.url, "--image", f"{API}:2.0.0"], env=hook_env)
    assert res.returncode == 0, res.stderr
    assert deploy_remote.head() == res.stdout.strip()
    assert (deploy_remote.path / "config").read_text() == config_before
    assert not (deploy_remote.path / "info" / "sparse-checkout").exists()


def test_branch_option(tmp_path: Path, gitops) -> None:
    remote = make_bare_remote(tmp_path / "r", branch="production")
    git("branch", "staging", "production", cwd=remote.path)
    res = gitops(
        ["bump", "--deploy-repo", remote.url, "--image", f"{API}:2.0.0", "--branch", "staging"],
        env=no_identity_env(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    assert remote.head("staging") == res.stdout.strip() and remote.head("staging") != remote.head(
        "production"
    )


def test_not_found_exits_3_and_says_where(deploy_remote: DeployRemote, gitops, tmp_path: Path) -> None:
    before = deploy_remote.head()
    res = gitops(
        ["bump", "--deploy-repo", deploy_remote.url, "--image", "registry.example.com/team/ap:2.0.0"],
        env=no_identity_env(tmp_path),
    )
    assert res.returncode == 3, res.stderr
    assert "registry.example.com/team/ap" in res.stderr and deploy_remote.url in res.stderr
    assert deploy_remote.head() == before
    # --path limits where it looks; --container limits which containers count.
    res = gitops(
        ["bump", "--deploy-repo", deploy_remote.url, "--image", f"{API}:2.0.0", "--path", "charts"],
        env=no_identity_env(tmp_path),
    )
    assert res.returncode == 3 and "charts" in res.stderr
    res = gitops(
        ["bump", "--deploy-repo", deploy_remote.url, "--image", f"{API}:2.0.0", "--container", "nope"],
        env=no_identity_env(tmp_path),
    )
    assert res.returncode == 3 and "nope" in res.stderr
    assert deploy_remote.head() == before


def test_container_option_restricts_to_that_container(
    deploy_remote: DeployRemote, gitops, tmp_path: Path
) -> None:
    res = gitops(
        ["bump", "--deploy-repo", deploy_remote.url, "--image", f"{API}:2.0.0", "--container", "api"],
        env=no_identity_env(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    text = deploy_remote.show(API_FILE).decode()
    assert f'image: "{API}:2.0.0" # pinned by CI' in text
    assert f"image: {API}:1.0.0   # same image" in text  # the `migrate` init container is not `api`


def test_container_with_a_kustomize_entry_for_other_containers_too_is_refused(tmp_path: Path, gitops) -> None:
    """--container worker bumped the kustomize entry along: `kubectl kustomize` then deployed web at the new
    tag too (exit 0, no warning).  Refused before any change, naming the entry."""
    files = {
        "kustomization.yaml": "resources: [d.yaml]\nimages:\n  - name: team/app\n    newTag: v1\n",
        "d.yaml": "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n"
                  "        - name: web\n          image: team/app:v1\n"
                  "        - name: worker\n          image: team/app:v1\n",
    }
    remote = make_bare_remote(tmp_path / "remotes", files)
    head = remote.head()
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", "team/app:v2", "--container", "worker"],
                 env=no_identity_env(tmp_path))
    assert res.returncode == 13, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith(("error:", "hint:"))]
    assert errors[0] == ("error: kustomization.yaml:3: this kustomize images: entry sets team/app in every container "
                         "using it, container 'web' (d.yaml:7) too, which --container 'worker' leaves out; "
                         "nothing was written")
    assert len(errors) == 2 and errors[1].startswith("hint: bump without --container")
    assert remote.head() == head
    checkout = remote.clone(tmp_path / "co")
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", "team/app:v2", "--container", "worker",
                  "--no-commit"], env=no_identity_env(tmp_path))
    assert res.returncode == 13 and "kustomization.yaml:3:" in res.stderr
    assert git("status", "--porcelain", cwd=checkout) == ""
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", "team/app:v2", "--no-commit"],
                 env=no_identity_env(tmp_path))  # every container: fine
    assert res.returncode == 0, res.stderr


def test_a_kustomization_named_Kustomization_is_bumped(tmp_path: Path, gitops) -> None:  # noqa: N802
    """kustomize reads `Kustomization` as it reads kustomization.yaml: bump read only *.yaml/*.yml, changed the
    Deployment and left `newTag: v1`, which kustomize renders over it (exit 0, the old image deployed)."""
    files = {
        "app/Kustomization": "resources: [d.yaml]\nimages:\n  - name: team/app\n    newTag: v1\n",
        "app/d.yaml": "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n"
                      "        - name: web\n          image: team/app:v1\n",
    }
    remote = make_bare_remote(tmp_path / "remotes", files)
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", "team/app:v2"], env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "app/Kustomization:4:13: v1 -> v2" in res.stderr
    assert remote.show("app/Kustomization") == b"resources: [d.yaml]\nimages:\n  - name: team/app\n    newTag: v2\n"
    checkout = remote.clone(tmp_path / "co")
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", "team/app:v3"], env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert b"newTag: v3" in remote.show("app/Kustomization") and b"team/app:v3" in remote.show("app/d.yaml")


def _deployment(container: str, image: str) -> str:
    return (f"kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - name: {container}\n"
            f"        image: {image}\n")


def test_container_and_kustomize_entries_look_at_what_the_kustomization_renders(tmp_path: Path, gitops) -> None:
    """The containers a kustomize entry moves are those of its kustomization's resources (followed through
    directories), read whether they name the bumped image or not -- in a remote's sparse clone too."""
    web = "registry.example.com/team/web"
    # apps/b is no resource of apps/a: its `worker` is not moved by apps/a's entry (this was exit 13)
    remote = make_bare_remote(tmp_path / "r1", {
        "apps/a/kustomization.yaml": f"resources: [deployment.yaml]\nimages:\n- name: {web}\n  newTag: v1\n",
        "apps/a/deployment.yaml": _deployment("app", f"{web}:v1"),
        "apps/b/deployment.yaml": _deployment("worker", f"{web}:v0"),
    })
    checkout = remote.clone(tmp_path / "co")
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{web}:v2", "--container", "app", "--dry-run"],
                 env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", f"{web}:v2", "--container", "app"],
                 env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert remote.changed_files() == ["apps/a/deployment.yaml", "apps/a/kustomization.yaml"]
    # apps/b is a base of apps/a, and its job uses the entry by its `name` (`web`) in a file that does not
    # name team/webapp: kustomize moves `migrate` too (this was exit 0)
    remote = make_bare_remote(tmp_path / "r2", {
        "apps/a/kustomization.yaml": "resources: [deployment.yaml, ../b]\nimages:\n- name: web\n"
                                     f"  newName: {web}app\n  newTag: v1\n",
        "apps/a/deployment.yaml": _deployment("app", f"{web}app:v1"),
        "apps/b/kustomization.yaml": "resources: [job.yaml]\n",
        "apps/b/job.yaml": _deployment("migrate", "web"),
    })
    head = remote.head()
    for repo in (remote.url, str(remote.clone(tmp_path / "co2"))):
        res = gitops(["bump", "--deploy-repo", repo, "--image", f"{web}app:v2", "--container", "app", "--dry-run"],
                     env=no_identity_env(tmp_path))
        assert res.returncode == 13, res.stderr
        assert ("error: apps/a/kustomization.yaml:3: this kustomize images: entry sets web in every container using "
                "it, container 'migrate' (apps/b/job.yaml:7) too, which --container 'app' leaves out; nothing was "
                "written") in res.stderr.splitlines()
    assert remote.head() == head


@pytest.mark.parametrize("image", ["Registry.example.com/Team/API:2", "team/api", "team/api:bad tag", ""])
def test_invalid_image_exits_2_before_cloning(image: str, gitops, tmp_path: Path) -> None:
    # The remote does not exist: an attempt to reach it would fail with exit 10, not 2.
    res = gitops(
        ["bump", "--deploy-repo", (tmp_path / "missing.git").as_uri(), "--image", image],
        env=no_identity_env(tmp_path),
    )
    assert res.returncode == 2, res.stderr
    assert "image" in res.stderr and "missing.git" not in res.stderr


def test_unreachable_remote_exits_10(gitops, tmp_path: Path) -> None:
    (tmp_path / "not-a-repo.git").mkdir()
    res = gitops(
        ["bump", "--deploy-repo", (tmp_path / "not-a-repo.git").as_uri(), "--image", f"{API}:2"],
        env=no_identity_env(tmp_path),
    )
    assert res.returncode == 10, res.stderr
    assert res.stderr.count("\n") <= 3 and "Traceback" not in res.stderr


def test_missing_file_url_exits_2_before_any_work(gitops, tmp_path: Path) -> None:
    res = gitops(
        ["bump", "--deploy-repo", (tmp_path / "missing.git").as_uri(), "--image", f"{API}:2"],
        env=no_identity_env(tmp_path),
    )
    assert res.returncode == 2, res.stderr
    assert "missing.git': no such directory" in res.stderr and "Cloning" not in res.stderr


def test_unparseable_template_is_skipped_with_a_warning(
    deploy_remote: DeployRemote, gitops, tmp_path: Path
) -> None:
    res = gitops(
        ["bump", "--deploy-repo", deploy_remote.url, "--image", "registry.example.com/team/frontend:4"],
        env=no_identity_env(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    assert "warning: charts/frontend/templates/deployment.yaml:6: skipped (" in res.stderr
    assert deploy_remote.changed_files() == ["charts/frontend/values.yaml"]


def test_all_or_nothing_when_a_digest_cannot_be_resolved(tmp_path: Path, gitops) -> None:
    digest = "sha256:" + "1" * 64
    files = {
        "a.yaml": "image: 127.0.0.1:9/team/app:1.0.0\n",
        "b.yaml": f"image: 127.0.0.1:9/team/app:1.0.0@{digest}\n",
    }
    remote = make_bare_remote(tmp_path / "r", files)
    before = remote.head()
    res = gitops(
        ["bump", "--deploy-repo", remote.url, "--image", "127.0.0.1:9/team/app:2.0.0"],
        env=no_identity_env(tmp_path),
    )
    assert res.returncode not in (0, 70), res.stderr
    assert "b.yaml" in res.stderr or "127.0.0.1:9" in res.stderr
    assert remote.head() == before


SPINNER = "\u280b"  # the first frame of rich's "dots" spinner


def test_clone_spinner_on_a_terminal_and_none_with_no_color(deploy_remote: DeployRemote, tmp_path: Path) -> None:
    """Long steps show progress on a terminal (the clone: a spinner, erased when it ends); never with
    NO_COLOR, and never off a terminal (the plain `==> Cloning` line is the progress there)."""
    from tests.fixtures.cli import run_gitops_tty

    # a terminal wide enough for the line with the remote's path on it (pytest's temp dirs are long, and
    # longer still in a worker's: popen-gwN/); a narrower one wraps it
    wide = str(len(f"==> Cloning {deploy_remote.url} (its default branch)") + 40)
    status, out, terminal = run_gitops_tty(["bump", "--deploy-repo", deploy_remote.url, "--image", f"{API}:2.0.0"],
                                           env=no_identity_env(tmp_path, COLUMNS=wide))
    assert status == 0, terminal
    assert out.strip() == deploy_remote.head()
    assert f"{SPINNER}\x1b[0m Cloning {deploy_remote.url} (its default branch)" in terminal
    status, out, terminal = run_gitops_tty(["bump", "--deploy-repo", deploy_remote.url, "--image", f"{API}:3.0.0"],
                                           env=no_identity_env(tmp_path, NO_COLOR="1", COLUMNS=wide))
    assert status == 0, terminal
    assert SPINNER not in terminal and "\x1b" not in terminal
    assert f"==> Cloning {deploy_remote.url} (its default branch)" in terminal


def test_a_bump_whose_reader_went_away_still_lands(deploy_remote: DeployRemote, tmp_path: Path) -> None:
    """`gitops bump ... 2>&1 | head -c1`: every write after the reader left fails (EPIPE).  The bump is
    not cut short by it (click's handler exited 1 at the first line, before the clone): the commit lands
    and the exit code is the bump's."""
    import subprocess

    from tests.fixtures.cli import GITOPS, gitops_env

    before = deploy_remote.head()
    proc = subprocess.Popen([str(GITOPS), "bump", "--deploy-repo", deploy_remote.url, "--image", f"{API}:2.0.0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=gitops_env(no_identity_env(tmp_path)))
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before gitops writes its first line
    assert proc.wait(timeout=120) == 0
    assert deploy_remote.git("rev-parse", f"{deploy_remote.head()}~1").strip() == before
    assert deploy_remote.show(API_FILE) == api_expected("2.0.0")


ODD_NAME = "e\x1b[31mred\nx.yaml"  # an escape sequence and a line break in a deploy repo's file name
ODD_IMAGE = "127.0.0.1:5000/demo/x"


def test_a_file_name_with_control_characters_is_shown_escaped_and_quoted(tmp_path: Path) -> None:
    """Progress lines show the name escaped, on one line; the dry run's diff quotes it as git does (a
    valid patch, no raw escape sequence); `--no-commit` prints it quoted, one line; a commit is made."""
    from tests.fixtures.cli import run_gitops

    remote = make_bare_remote(tmp_path / "remotes", files={ODD_NAME: f"image: {ODD_IMAGE}:old\n"})
    shown = "e\\x1b[31mred\\nx.yaml:1:8: 127.0.0.1:5000/demo/x:old -> 127.0.0.1:5000/demo/x:new1234"
    quoted = '"e\\033[31mred\\nx.yaml"'
    args = ["bump", "--deploy-repo", remote.url, "--image", f"{ODD_IMAGE}:new1234"]

    dry = run_gitops([*args, "--dry-run"], env=no_identity_env(tmp_path))
    assert dry.returncode == 0, dry.stderr
    assert shown in dry.stderr.splitlines() and "\x1b" not in dry.stderr
    assert dry.stdout.startswith('diff --git "a/e\\033[31mred\\nx.yaml" "b/e\\033[31mred\\nx.yaml"\n'
                                 '--- "a/e\\033[31mred\\nx.yaml"\n+++ "b/e\\033[31mred\\nx.yaml"\n')
    assert "\x1b" not in dry.stdout
    checkout = remote.clone(tmp_path / "checkout")
    (tmp_path / "bump.diff").write_text(dry.stdout)
    git("apply", str(tmp_path / "bump.diff"), cwd=checkout)  # the dry run's diff is a patch git takes
    assert (checkout / ODD_NAME).read_text() == f"image: {ODD_IMAGE}:new1234\n"
    git("checkout", "--", ".", cwd=checkout)

    local = run_gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{ODD_IMAGE}:new1234", "--no-commit"],
                       env=no_identity_env(tmp_path))
    assert local.returncode == 0, local.stderr
    assert local.stdout == quoted + "\n" and shown in local.stderr.splitlines()

    res = run_gitops(args, env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert shown in res.stderr.splitlines() and "\x1b" not in res.stderr
    assert res.stdout.strip() == remote.head()
    assert remote.show(ODD_NAME) == f"image: {ODD_IMAGE}:new1234\n".encode()


def test_an_anchored_tag_another_value_uses_is_refused_and_nothing_is_written(tmp_path: Path, gitops) -> None:
    """A Helm `tag: &ver` that `appVersion: *ver` also uses was bumped (exit 0), changing appVersion too."""
    values = 'image:\n  repository: team/helmapp\n  tag: &ver "1.0"\nappVersion: *ver\n'
    remote = make_bare_remote(tmp_path / "remotes", {"values.yaml": values})
    head = remote.head()
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", "team/helmapp:2.0"], env=no_identity_env(tmp_path))
    assert res.returncode == 13, res.stderr
    assert ("error: values.yaml:3: the tag of 'team/helmapp:1.0' comes from the anchor &ver, which is also used by "
            "`appVersion` on line 4, not an image; bumping it would change that too") in res.stderr
    assert remote.head() == head


def test_container_bumps_the_compose_template_only_its_services_merge(tmp_path: Path, gitops) -> None:
    """`x-app: &app {image: ...}` merged into web only was refused with --container web (exit 13, "reads back
    as ..."); merged into a service left out too, the refusal names that service and the merge key."""
    compose = "x-app: &app\n  image: team/app:1\n  restart: always\nservices:\n  web:\n    <<: *app\n"
    remote = make_bare_remote(tmp_path / "remotes", {"compose.yaml": compose})
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", "team/app:2", "--container", "web"],
                 env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert remote.show("compose.yaml").decode() == compose.replace("team/app:1", "team/app:2")
    shared = make_bare_remote(tmp_path / "remotes", {"compose.yaml": compose + "  worker:\n    <<: *app\n"},
                              name="shared.git")
    head = shared.head()
    res = gitops(["bump", "--deploy-repo", shared.url, "--image", "team/app:3", "--container", "web"],
                 env=no_identity_env(tmp_path))
    assert res.returncode == 13, res.stderr
    assert ("error: compose.yaml:2: 'team/app:1' is also the image of service 'worker' (they share it through the "
            "merge key `<<: *app` on line 8), which --container web excludes") in res.stderr
    assert shared.head() == head


@pytest.mark.parametrize("parser", ["default", "python"])
def test_a_tab_before_a_comment_does_not_skip_a_file(parser: str, tmp_path: Path, gitops) -> None:
    """libyaml refuses the flow `{..., image: team/app:v1}` (YAML 1.1); the pure parser it falls back to refused
    the tab before the comment: `warning: pod.yaml:6: skipped (... found character '\\t' ...)`, exit 3."""
    pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: team/app:v1}]\n"
           "  restartPolicy: Always\t# tab before comment\n")
    remote = make_bare_remote(tmp_path / "remotes", {"pod.yaml": pod})
    env = no_identity_env(tmp_path, **({"GITOPS_YAML_PARSER": "python"} if parser == "python" else {}))
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", "team/app:v2"], env=env)
    assert res.returncode == 0, res.stderr
    assert "skipped" not in res.stderr
    assert remote.show("pod.yaml").decode() == pod.replace("team/app:v1", "team/app:v2")


PATH_FILES = {  # --path team00: what is below it that names the image, a tag, or neither; and elsewhere
    "team00/a/deployment.yaml": _deployment("checkout-0", "registry.example.com/shop/checkout:1.0.0"),
    "team00/b/deployment.yaml": _deployment("main-0", "registry.example.com/shop/other:1.0.0"),
    "team00/b/values.yaml": "image:\n  tag: v1\n",  # names no repository: the warning reads it
    "team00/c/notes.md": "checkout\n",
    "team01/a/deployment.yaml": _deployment("checkout-1", "registry.example.com/shop/checkout:1.0.0"),
    "team01/b/deployment.yaml": _deployment("main-1", "registry.example.com/shop/other:1.0.0"),
}


def test_a_path_limits_the_sparse_checkout_and_the_blobs_fetched_to_the_files_below_it(tmp_path: Path,
                                                                                        gitops) -> None:
    """`--path` on a remote: the blobless clone fetches the YAML blobs below the path only (this fetched every
    blob: a full checkout), and the bump is the one a full checkout gives: the file naming the image below
    the path, the warning for a tag-only `image:` map there, nothing elsewhere."""
    remote = make_bare_remote(tmp_path / "r", PATH_FILES)
    trace = tmp_path / "packets"
    res = gitops(["bump", "--dry-run", "--deploy-repo", remote.url, "--path", "team00", "--image",
                  "registry.example.com/shop/checkout:2.0.0"],
                 env=no_identity_env(tmp_path, GIT_TRACE_PACKET=str(trace)))
    assert res.returncode == 0, res.stderr
    assert [ln for ln in res.stdout.splitlines() if ln.startswith("diff --git")] == [
        "diff --git a/team00/a/deployment.yaml b/team00/a/deployment.yaml"]
    assert "team00/b/values.yaml:2: skipped (a tag in an `image:` map that names no repository" in res.stderr
    wanted = {ln.split("want ", 1)[1].split()[0] for ln in trace.read_text().splitlines() if "> want " in ln}
    blobs = {path: remote.git("rev-parse", f"HEAD:{path}").strip() for path in PATH_FILES}
    fetched = {path for path, blob in blobs.items() if blob in wanted}
    assert fetched == {"team00/a/deployment.yaml", "team00/b/deployment.yaml", "team00/b/values.yaml"}


def test_a_path_is_checked_on_the_sparse_clone_as_on_a_full_checkout(tmp_path: Path, gitops) -> None:
    """The files below a --path that name nothing are not checked out, yet the path reads as in a full
    checkout: a directory of such files is there (nothing found: exit 3, not "does not exist"), a file given
    is bumped, a symlink on the way is refused (exit 2), as is a path the repo does not have."""
    remote = make_bare_remote(tmp_path / "r", PATH_FILES)
    seed = remote.clone(tmp_path / "seed")
    os.symlink("team00", seed / "link")
    git("add", "link", cwd=seed)
    git("-c", "user.name=a", "-c", "user.email=a@b", "commit", "--quiet", "-m", "link", cwd=seed)
    git("push", "--quiet", "origin", "HEAD:main", cwd=seed)

    def dry_run(path: str):  # type: ignore[no-untyped-def]
        return gitops(["bump", "--dry-run", "--deploy-repo", remote.url, "--path", path, "--image",
                       "registry.example.com/shop/checkout:2.0.0"], env=no_identity_env(tmp_path))

    res = dry_run("team00/c")
    assert res.returncode == 3, res.stderr
    res = dry_run("team01/a/deployment.yaml")
    assert res.returncode == 0 and "+++ b/team01/a/deployment.yaml" in res.stdout, res.stderr
    res = dry_run("link/a")
    assert res.returncode == 2 and "error: --path 'link/a': goes through a symlink" in res.stderr
    res = dry_run("team02")
    assert res.returncode == 2 and "error: --path 'team02': does not exist in the repository" in res.stderr


def test_a_file_whose_name_has_a_newline_is_checked_out_and_bumped(tmp_path: Path, gitops) -> None:
    """A sparse-checkout pattern is one line: a selected file whose name holds a newline cannot be named
    by one, so the clone checks out every file instead; the file is bumped, not left out of the bump."""
    name = "apps/odd\nname.yaml"
    remote = make_bare_remote(tmp_path / "r", {name: _deployment("odd", "registry.example.com/shop/checkout:1.0.0"),
                                               "apps/other.yaml": "kind: ConfigMap\n"})
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", "registry.example.com/shop/checkout:2.0.0"],
                 env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert b"image: registry.example.com/shop/checkout:2.0.0" in remote.show(name)


def test_a_path_starting_with_a_colon_is_a_path_not_pathspec_magic(tmp_path: Path, gitops) -> None:
    """`--path :team` names the directory `:team`: git reads a leading `:` of a pathspec as magic (`:team`
    is `team` to it, which this repo does not have), so the path is looked up literally in the clone's tree,
    and what is below it is checked out and bumped, nothing else."""
    image = "registry.example.com/shop/checkout"
    remote = make_bare_remote(tmp_path / "r", {":team/deployment.yaml": _deployment("c0", f"{image}:1.0.0"),
                                               "other/deployment.yaml": _deployment("c1", f"{image}:1.0.0")})
    res = gitops(["bump", "--dry-run", "--deploy-repo", remote.url, "--path", ":team", "--image", f"{image}:2.0.0"],
                 env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert [ln for ln in res.stdout.splitlines() if ln.startswith("diff --git")] == [
        "diff --git a/:team/deployment.yaml b/:team/deployment.yaml"]
