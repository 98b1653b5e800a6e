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


SUFFIX_BASE = {
    "base/kustomization.yaml": "resources: [deployment.yaml]\n",
    "base/deployment.yaml": BASE["base/deployment.yaml"].replace("image: team/app\n", f"image: {APP}:v1\n"),
    "debug/kustomization.yaml": f"resources: [../base]\nimages:\n- name: {APP}\n  tagSuffix: -debug\n",
}


def test_a_kustomize_tag_suffix_entry_keeps_its_suffix_in_what_kustomize_renders(tmp_path: Path, gitops) -> None:
    """The entry used to get `newTag: v2`, which turns kustomize's tagSuffix off: the overlay deployed
    app:v2, not app:v2-debug.  Now the base is bumped, the entry left as it is, and the pushed tree renders
    the new tag with the suffix (`kubectl kustomize`, offline)."""
    import shutil
    import subprocess

    remote = make_bare_remote(tmp_path / "remotes", SUFFIX_BASE)
    code, stderr = _bump(gitops, remote, tmp_path)
    assert code == 0, stderr
    assert remote.changed_files() == ["base/deployment.yaml"] and "warning" not in stderr
    work = remote.clone(tmp_path / "work")
    rendered = subprocess.run([shutil.which("kubectl") or "kubectl", "kustomize", str(work / "debug")],
                              capture_output=True, text=True, check=True).stdout
    images = [line.split("image:", 1)[1].strip() for line in rendered.splitlines() if "image:" in line]
    assert images and all(i.startswith(f"{APP}:v2-debug") for i in images)


def test_only_placeholder_references_are_exit_3_naming_them(tmp_path: Path, gitops) -> None:
    """A Flux postBuild variable (`newTag: ${APP_VERSION}`) was overwritten with the tag, and a placeholder in an
    image string was not counted: exit 3 said no reference was found.  Now neither is touched, each is named,
    and so is why nothing was found."""
    files = {"apps/kustomization.yaml": f"resources: [../base]\nimages:\n- name: {APP}\n  newTag: ${{APP_VERSION}}\n",
             "other/deployment.yaml": BASE["base/deployment.yaml"].replace("team/app", APP + ":${TAG}")}
    remote = make_bare_remote(tmp_path / "remotes", files)
    head = remote.head()
    code, stderr = _bump(gitops, remote, tmp_path)
    assert code == 3 and remote.head() == head, stderr
    assert "warning: apps/kustomization.yaml:4: skipped (the tag of registry.example.com/team/app, '${APP_VERSION}', " \
           "is a placeholder, which gitops never overwrites" in stderr
    assert "warning: other/deployment.yaml:10: skipped (the tag of" in stderr
    error = next(ln for ln in stderr.splitlines() if ln.startswith("error:"))
    assert error.endswith(": the tag or digest at apps/kustomization.yaml:4, other/deployment.yaml:10 is a "
                          "placeholder, which gitops never overwrites")
