"""`gitops bump` into a bare deploy repo where the environment's image is set by an override that Argo CD or
Flux applies over the manifests: the override is what changes, byte-exactly, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.gitremotes import make_bare_remote
from tests.integration.test_bump import no_identity_env

pytestmark = pytest.mark.integration

APP = "registry.example.com/team/app"
BASE = {  # the manifests every override below applies to
    "base/kustomization.yaml": "resources: [deployment.yaml]\n",
    "base/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n"
                            "    spec:\n      containers:\n      - name: app\n        image: team/app\n",
}


def _bump(gitops, remote, tmp_path: Path, *extra: str, image: str = f"{APP}:v2") -> tuple[int, str]:
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", image, *extra], env=no_identity_env(tmp_path))
    return res.returncode, res.stderr


def test_an_argo_cd_applications_kustomize_images_are_bumped(tmp_path: Path, gitops) -> None:
    application = (
        "apiVersion: argoproj.io/v1alpha1\n"
        "kind: Application\n"
        "metadata: {name: app-staging, namespace: argocd}\n"
        "spec:\n"
        "  source:\n"
        "    repoURL: https://git.example.com/org/deploy.git\n"
        "    path: base\n"
        "    kustomize:\n"
        "      images:\n"
        f"      - team/app={APP}:v1   # staging\n"
        "      - 'team/other:3'\n"
        "  sources:\n"
        f"  - kustomize: {{images: [\"team/app={APP}:v1\"]}}\n"
    )
    remote = make_bare_remote(tmp_path / "remotes", {**BASE, "argocd/app-staging.yaml": application})
    code, stderr = _bump(gitops, remote, tmp_path)
    assert code == 0, stderr
    assert remote.changed_files() == ["argocd/app-staging.yaml"]
    assert remote.show("argocd/app-staging.yaml").decode() == application.replace(f"{APP}:v1", f"{APP}:v2")
    assert "argocd/app-staging.yaml:10:9:" in stderr
    code, stderr = _bump(gitops, remote, tmp_path)
    assert code == 0 and "already up to date" in stderr
    # an override names no container: with --container it is bumped only along with a container of that name
    # using the image, as a kustomization's images: entry is (none here: the base's container is `team/app`)
    code, stderr = _bump(gitops, remote, tmp_path, "--container", "app")
    assert code == 3 and "no container of that name uses" in stderr


def test_an_argo_cd_image_updater_write_back_file_is_bumped(tmp_path: Path, gitops) -> None:
    # what Image Updater's git write-back commits into the Application's path (and Argo CD merges into its source)
    write_back = f"kustomize:\n  images:\n  - team/app={APP}:v1\n"
    remote = make_bare_remote(tmp_path / "remotes", {**BASE, "base/.argocd-source-app-staging.yaml": write_back})
    code, stderr = _bump(gitops, remote, tmp_path)
    assert code == 0, stderr
    assert remote.changed_files() == ["base/.argocd-source-app-staging.yaml"]
    assert remote.show("base/.argocd-source-app-staging.yaml").decode() == write_back.replace(":v1", ":v2")
    code, stderr = _bump(gitops, remote, tmp_path, "--path", "base")
    assert code == 0 and "already up to date" in stderr


def test_argo_cd_helm_parameters_are_bumped_in_an_application_and_a_write_back_file(tmp_path: Path, gitops) -> None:
    application = (
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: app}\nspec:\n  source:\n"
        "    chart: app\n    repoURL: https://charts.example.com\n    helm:\n      parameters:\n"
        f"      - name: image.repository\n        value: {APP}\n"
        "      - name: image.tag\n        value: \"v1\"  # set by CI\n"
        "      - name: replicaCount\n        value: \"2\"\n"
    )
    write_back = (f"helm:\n  parameters:\n  - name: image.name\n    value: {APP}\n    forcestring: true\n"
                  "  - name: image.tag\n    value: v1\n    forcestring: true\n")
    remote = make_bare_remote(tmp_path / "remotes", {"argocd/app.yaml": application,
                                                      "chart/.argocd-source-app.yaml": write_back})
    code, stderr = _bump(gitops, remote, tmp_path)
    assert code == 0, stderr
    assert remote.changed_files() == ["argocd/app.yaml", "chart/.argocd-source-app.yaml"]
    assert remote.show("argocd/app.yaml").decode() == application.replace('"v1"', '"v2"')
    assert remote.show("chart/.argocd-source-app.yaml").decode() == write_back.replace("value: v1", "value: v2")


def test_a_flux_helmreleases_post_renderer_images_entry_is_bumped(tmp_path: Path, gitops) -> None:
    release = (
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: app, namespace: staging}\n"
        "spec:\n  chart:\n    spec: {chart: app, sourceRef: {kind: HelmRepository, name: charts}}\n"
        "  postRenderers:\n    - kustomize:\n        images:\n"
        f"          - name: team/app\n            newName: {APP}\n            newTag: v1  # staging\n"
    )
    remote = make_bare_remote(tmp_path / "remotes", {"staging/release.yaml": release})
    code, stderr = _bump(gitops, remote, tmp_path)
    assert code == 0, stderr
    assert remote.show("staging/release.yaml").decode() == release.replace("newTag: v1", "newTag: v2")
    # it names no container: with --container, a container of that name must use the image (none here)
    code, stderr = _bump(gitops, remote, tmp_path, "--container", "app", image=f"{APP}:v3")
    assert code == 3 and "no container of that name uses" in stderr


def test_a_tag_only_values_override_file_named_with_path_is_exit_3_saying_why(tmp_path: Path, gitops) -> None:
    files = {"chart/values.yaml": f"image:\n  repository: {APP}\n  tag: v1\n",
             "chart/values-staging.yaml": "image:\n  tag: v1   # staging\n"}
    remote = make_bare_remote(tmp_path / "remotes", files)
    head = remote.head()
    code, stderr = _bump(gitops, remote, tmp_path, "--path", "chart/values-staging.yaml")
    assert code == 3 and remote.head() == head
    lines = stderr.splitlines()
    assert "warning: chart/values-staging.yaml:2: skipped (a tag in an `image:` map that names no repository" \
           in "\n".join(lines)
    error = next(ln for ln in lines if ln.startswith("error:"))
    assert error.endswith("(paths: chart/values-staging.yaml): the tag at chart/values-staging.yaml:2 is in an "
                          "`image:` map that names no repository (a values override file), so gitops cannot tell "
                          "which image it tags")
    assert next(ln for ln in lines if ln.startswith("hint:")).startswith(
        f"hint: write the repository beside the tag (`repository: {APP}`")
