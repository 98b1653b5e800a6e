"""`gitops sync` end to end: the installed command against real git remotes (file://, smart HTTP with a
token), real discovery and real `kubectl kustomize`.

No Kubernetes API server can run on this machine, so the apply and prune steps run against a recording
stand-in for the `kubectl` executable, tests/fixtures/fake_kubectl.py (the only one), passed with
`--kubectl`: it records argv and stdin of every call, answers like kubectl (one `kind.group/name op`
line per applied object, `Error from server` for objects it is told to reject), keeps the objects it
"applied" with their labels in a JSON file standing for the cluster, deletes only objects whose labels
match the selector, and forwards `kustomize` to the real kubectl.  The tests check the exact kubectl
arguments and the documents on its stdin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.cli import GITOPS, gitops_env
from tests.fixtures.gitremotes import DeployRemote, git, make_bare_remote, write_tree
from tests.fixtures.procs import stop_process

pytestmark = pytest.mark.integration

FAKE = Path(__file__).resolve().parents[1] / "fixtures" / "fake_kubectl.py"
LABELS = ("gitops-cli.dev/managed-by", "gitops-cli.dev/instance")
APPLY = ["apply", "-f", "-", "--server-side", "--field-manager=gitops", "--force-conflicts"]

FILES = {
    "apps/web/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: registry.example.com/web:1.0.0
""",
    "apps/web/service.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n",
    "apps/web/kustomization.yaml": """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: shop
resources: [deployment.yaml, service.yaml]
images:
  - name: registry.example.com/web
    newTag: 2.0.0
""",
    "cluster/00-config.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  mode: "0755"
---
apiVersion: v1
kind: Namespace
metadata:
  name: shop
""",
    "cluster/crd.yaml": """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
""",
    "values.yaml": "image:\n  repository: registry.example.com/web\n  tag: 1.0.0\n",
    ".gitlab-ci.yml": "deploy:\n  script: [gitops sync]\n",
}


class Kube:
    """The fake kubectl's records: calls (argv, stdin) and the objects it holds."""

    def __init__(self, tmp: Path) -> None:
        self.log = tmp / "kubectl.log"
        self.store = tmp / "cluster.json"
        self.env = {"FAKE_KUBECTL_LOG": str(self.log), "FAKE_KUBECTL_STORE": str(self.store)}

    def calls(self, verb: str | None = None) -> list[dict]:
        if not self.log.exists():
            return []
        calls = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [c for c in calls if verb is None or verb in c["argv"][:3]]

    def applied_docs(self, index: int = -1) -> list[dict]:
        stdin = self.calls("apply")[index]["stdin"]
        return [json.loads(chunk) for chunk in stdin.split("---\n") if chunk.strip()]

    def objects(self) -> dict[str, dict[str, str]]:
        return json.loads(self.store.read_text()) if self.store.exists() else {}


@pytest.fixture
def kube(tmp_path: Path) -> Kube:
    return Kube(tmp_path)


@pytest.fixture
def remote(tmp_path: Path) -> DeployRemote:
    return make_bare_remote(tmp_path / "remotes", FILES)


def sync(kube: Kube, tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    cmd = ["sync", "--kubectl", str(FAKE), "--cache-dir", str(tmp_path / "cache"), *args]
    return subprocess.run([str(GITOPS), *cmd], env=gitops_env({**kube.env, **(env or {})}), text=True,
                          capture_output=True, timeout=120)


def push(remote: DeployRemote, tmp: Path, files: dict[str, str], remove: tuple[str, ...] = ()) -> str:
    work = tmp / f"work-{time.monotonic_ns()}"
    remote.clone(work)
    write_tree(work, files)
    for rel in remove:
        git("rm", "--quiet", "--", rel, cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "change", cwd=work)
    git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=work)
    return remote.head()


def test_first_pass_applies_everything_in_order_with_one_kubectl_apply(remote, kube, tmp_path):
    res = sync(kube, tmp_path, "--repo", remote.url, "--verbose")
    assert res.returncode == 0, res.stderr
    assert res.stdout == remote.head() + "\n"
    # one kustomize render, then exactly one apply with the exact arguments
    assert [c["argv"][0] for c in kube.calls()] == ["kustomize", "apply"]
    assert kube.calls("apply")[0]["argv"] == APPLY
    docs = kube.applied_docs()
    assert [(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]) for d in docs] == [
        ("Namespace", "", "shop"),
        ("CustomResourceDefinition", "", "widgets.example.com"),
        ("ConfigMap", "shop", "settings"),
        ("Service", "shop", "web"),
        ("Deployment", "shop", "web"),
    ]
    # kustomize rendered the directory (namespace and image tag), the YAML strings kept their type
    [container] = docs[-1]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/web:2.0.0"
    assert docs[2]["data"] == {"mode": "0755"}
    instance = {d["metadata"]["labels"]["gitops-cli.dev/instance"] for d in docs}
    assert len(instance) == 1 and all(d["metadata"]["labels"][LABELS[0]] == "gitops-sync" for d in docs)
    assert "values.yaml: not a Kubernetes object" in res.stderr
    assert ".gitlab-ci.yml: not a Kubernetes object" in res.stderr
    assert "Deployment shop/web: serverside-applied" in res.stderr


def test_unchanged_commit_is_a_noop_until_force_or_a_new_commit(remote, kube, tmp_path):
    first = sync(kube, tmp_path, "--repo", remote.url)
    assert first.returncode == 0, first.stderr
    again = sync(kube, tmp_path, "--repo", remote.url)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    assert "already applied: nothing to do" in again.stderr
    assert len(kube.calls("apply")) == 1
    forced = sync(kube, tmp_path, "--repo", remote.url, "--force")
    assert forced.returncode == 0 and len(kube.calls("apply")) == 2
    new = push(remote, tmp_path, {"cluster/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                                        "  name: extra\n  namespace: shop\n"})
    third = sync(kube, tmp_path, "--repo", remote.url)
    assert third.returncode == 0, third.stderr
    assert third.stdout == new + "\n"
    assert "extra" in [d["metadata"]["name"] for d in kube.applied_docs()]


def test_failed_object_is_named_exit_15_and_the_commit_is_retried(remote, kube, tmp_path):
    res = sync(kube, tmp_path, "--repo", remote.url, env={"FAKE_KUBECTL_FAIL": "deployment.apps/web"})
    assert res.returncode == 15
    assert res.stdout == ""
    assert "1 of 5 objects failed to apply: Deployment shop/web (apps/web/ (kustomize))" in res.stderr
    assert 'kubectl: Error from server (Invalid): Deployment.apps "web" is invalid' in res.stderr
    assert [ln for ln in res.stderr.splitlines() if ln.startswith("error:")] == [  # one: kubectl's are named
        "error: 1 of 5 objects failed to apply: Deployment shop/web (apps/web/ (kustomize))"]
    retry = sync(kube, tmp_path, "--repo", remote.url)
    assert retry.returncode == 0, retry.stderr
    assert len(kube.calls("apply")) == 2  # not mistaken for an applied commit


def test_unreachable_cluster_fails_without_listing_every_object(remote, kube, tmp_path):
    res = sync(kube, tmp_path, "--repo", remote.url, env={"FAKE_KUBECTL_DOWN": "1"})
    assert res.returncode == 15
    assert "none of the 5 objects was applied" in res.stderr and "connection to the server" in res.stderr


def test_context_client_side_and_dry_run_arguments(remote, kube, tmp_path):
    res = sync(kube, tmp_path, "--repo", remote.url, "--context", "prod", "--no-server-side", "--dry-run",
               "--branch", "main", "--path", "cluster", env={"FAKE_KUBECTL_CONTEXTS": "*dev,prod"})
    assert res.returncode == 0, res.stderr
    assert kube.calls()[-1]["argv"] == ["--context", "prod", "apply", "-f", "-", "--dry-run=server"]
    assert [d["kind"] for d in kube.applied_docs()] == ["Namespace", "CustomResourceDefinition", "ConfigMap"]
    assert kube.objects() == {}  # a server dry run stores nothing
    real = sync(kube, tmp_path, "--repo", remote.url, "--path", "cluster")  # dry run remembered nothing
    assert real.returncode == 0 and "nothing to do" not in real.stderr


def test_prune_deletes_only_what_left_the_repo_and_carries_the_labels(remote, kube, tmp_path):
    assert sync(kube, tmp_path, "--repo", remote.url, "--prune").returncode == 0
    store = kube.objects()
    assert "configmap.|shop|settings" in store and "customresourcedefinition.apiextensions.k8s.io||" \
        "widgets.example.com" in store
    # an object nobody told sync about, and one applied by sync whose labels someone removed
    store["configmap.|shop|hand-made"] = {}
    store["customresourcedefinition.apiextensions.k8s.io||widgets.example.com"] = {}
    kube.store.write_text(json.dumps(store))
    push(remote, tmp_path, {}, remove=("cluster/crd.yaml", "cluster/00-config.yaml"))
    res = sync(kube, tmp_path, "--repo", remote.url, "--prune")
    assert res.returncode == 0, res.stderr
    deletes = [c["argv"] for c in kube.calls("delete")]
    selector = ",".join(f"{k}={v}" for k, v in kube.applied_docs()[0]["metadata"]["labels"].items()
                        if k in LABELS)
    assert deletes == [  # reverse install order: CRD last
        ["delete", "configmap", "--field-selector", "metadata.name=settings", "-l", selector,
         "--ignore-not-found", "--wait=false", "-n", "shop"],
        ["delete", "customresourcedefinition.v1.apiextensions.k8s.io", "--field-selector",
         "metadata.name=widgets.example.com", "-l", selector, "--ignore-not-found", "--wait=false"],
    ]
    left = kube.objects()
    assert "configmap.|shop|settings" not in left
    # the Namespace: apps/web's objects (the kustomization's `namespace: shop`) are still in it
    assert "namespace.||shop" in left and "warning: Namespace shop: not pruned: " in res.stderr
    assert "configmap.|shop|hand-made" in left  # never applied by sync: never a candidate
    assert "customresourcedefinition.apiextensions.k8s.io||widgets.example.com" in left  # unlabelled
    assert "pruned ConfigMap shop/settings" in res.stderr
    assert "CustomResourceDefinition widgets.example.com: gone already or not labelled" in res.stderr
    again = sync(kube, tmp_path, "--repo", remote.url, "--prune", "--force")
    assert again.returncode == 0 and len(kube.calls("delete")) == 2  # the inventory forgot them


def test_without_prune_nothing_is_deleted(remote, kube, tmp_path):
    assert sync(kube, tmp_path, "--repo", remote.url).returncode == 0
    push(remote, tmp_path, {}, remove=("cluster/crd.yaml",))
    assert sync(kube, tmp_path, "--repo", remote.url).returncode == 0
    assert kube.calls("delete") == []


def test_second_pass_while_one_holds_the_lock(remote, kube, tmp_path):
    assert sync(kube, tmp_path, "--repo", remote.url).returncode == 0
    [lock] = (tmp_path / "cache").glob("*/lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl,os,sys,time; fd=os.open(sys.argv[1], os.O_RDWR); "
         "fcntl.flock(fd, fcntl.LOCK_EX); os.pwrite(fd, str(os.getpid()).encode() + b'\\n', 0); "
         "print('held', flush=True); time.sleep(120)", str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        res = sync(kube, tmp_path, "--repo", remote.url, "--force")
        assert res.returncode == 16
        assert f"another gitops sync pass is running (lock {lock} held by pid {holder.pid})" in res.stderr
        assert len(kube.calls("apply")) == 1
    finally:
        stop_process(holder)
    assert sync(kube, tmp_path, "--repo", remote.url, "--force").returncode == 0


def test_bad_input_is_one_line_and_applies_nothing(remote, kube, tmp_path):
    outside = sync(kube, tmp_path, "--repo", remote.url, "--path", "../etc")
    assert outside.returncode == 2 and "--path '../etc': outside the repository" in outside.stderr
    broken_yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a: b\n"
    push(remote, tmp_path, {"cluster/broken.yaml": broken_yaml})
    broken = sync(kube, tmp_path, "--repo", remote.url)
    assert broken.returncode == 15
    assert "cluster/broken.yaml:4: not valid YAML" in broken.stderr and "Traceback" not in broken.stderr
    assert kube.calls("apply") == []
    missing = sync(kube, tmp_path, "--repo", remote.url, "--kubectl", str(tmp_path / "no-kubectl"))
    assert missing.returncode == 14 and "kubectl not found" in missing.stderr
    both = sync(kube, tmp_path, "--repo", remote.url, "--once", "--interval", "5m")
    assert both.returncode == 2
    nothing = sync(kube, tmp_path, "--repo", remote.url, "--path", "apps/web/missing")
    assert nothing.returncode == 2
    no_repo = sync(kube, tmp_path)
    assert no_repo.returncode == 2 and "--repo is required" in no_repo.stderr
    push(remote, tmp_path, {"docs/notes.yaml": "title: not an object\n"})
    none = sync(kube, tmp_path, "--repo", remote.url, "--path", "docs")
    assert none.returncode == 3 and "no Kubernetes objects in docs" in none.stderr


def test_a_kustomize_error_kubectl_writes_on_several_lines_keeps_its_cause(remote, kube, tmp_path):
    """kubectl (1.32) writes a failed kustomize as klog's `E1127 ... "command failed" err=<`, then the error's
    lines: the message kept that first line only, without the cause (no --enable-helm for helmCharts)."""
    push(remote, tmp_path, {"apps/redis/kustomization.yaml": "helmCharts:\n- name: redis\n"
                            "  repo: https://charts.example.com\n  version: 1.0.0\n  releaseName: redis\n"})
    res = sync(kube, tmp_path, "--repo", remote.url, "--once")
    assert res.returncode == 15, res.stderr
    error = next(ln for ln in res.stderr.splitlines() if ln.startswith("error: "))
    assert error.startswith("error: apps/redis: kubectl kustomize failed (exit 1): trouble configuring builtin "
                            "HelmChartInflationGenerator"), res.stderr
    assert error.endswith("must specify --enable-helm") and "err=<" not in error
    assert kube.calls("apply") == []


def test_branch_is_refused_as_bump_refuses_it_and_a_tags_name_is_no_obstacle(remote, kube, tmp_path):
    """`--branch 'x@{1}'` reached git (exit 10, invalid refspec) where bump says "not a valid branch name"
    (exit 2); a local checkout on a branch a tag shares its name with fetched refs/heads/heads/NAME."""
    for branch, said in (("main@{1}", "not a valid branch name"), ("-x", "not a valid branch name"),
                         ("refs/heads/main", "give the branch's name, without refs/heads/")):
        res = sync(kube, tmp_path, "--repo", remote.url, "--branch", branch)
        assert res.returncode == 2, res.stderr
        assert f"--branch {branch!r}: {said}" in res.stderr and "fetching" not in res.stderr
    local = remote.clone(tmp_path / "checkout")
    git("checkout", "--quiet", "-b", "release-1", cwd=local)
    git("push", "--quiet", "origin", "HEAD:refs/heads/release-1", cwd=local)
    git("tag", "release-1", cwd=local)
    res = sync(kube, tmp_path, "--repo", str(local), "--path", "cluster")
    assert res.returncode == 0, res.stderr
    assert "(release-1)" in res.stderr and res.stdout.strip() == remote.head("release-1")


def test_local_checkout_and_https_token_never_stored(remote, kube, tmp_path, http_git_server):
    local = remote.clone(tmp_path / "checkout")
    res = sync(kube, tmp_path, "--repo", str(local), "--path", "cluster")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == remote.head()

    token = "s3cr3t-sync-token"
    server = http_git_server(remote.path.parent, user="bot", token=token)
    over_http = sync(kube, tmp_path, "--repo", server.url(remote.path.name), "--path", "cluster",
                     env={"GITOPS_GIT_TOKEN": token, "GITOPS_GIT_USERNAME": "bot"})
    assert over_http.returncode == 0, over_http.stderr
    assert over_http.stdout.strip() == remote.head()
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    assert token not in over_http.stderr
    denied = sync(kube, tmp_path, "--repo", server.url(remote.path.name), env={"GITOPS_GIT_TOKEN": "wrong"})
    assert denied.returncode == 11


@pytest.mark.parametrize("locale", [{"LC_ALL": "C", "PYTHONUTF8": "0"}, {"LC_ALL": "C.UTF-8"}])
def test_non_ascii_manifests_reach_kubectl_as_utf8_in_any_locale(kube, tmp_path, locale):
    """kubectl reads and writes UTF-8 whatever the locale: gitops sends it the documents as UTF-8 and reads
    its output so (in an ASCII locale, without Python's UTF-8 mode, sync failed with exit 70 and kubectl got
    no input: nothing was applied).  Both a plain manifest and one rendered by `kubectl kustomize`."""
    greeting = "Grüße, 世界 €"
    config = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\ndata:\n  greeting: {greeting}\n"
    remote = make_bare_remote(tmp_path / "remotes", {
        "plain/config.yaml": config,
        "kust/config.yaml": config.replace("plain", "rendered"),
        "kust/kustomization.yaml": "resources: [config.yaml]\ncommonAnnotations: {note: café}\n",
    })
    env = {"LANG": "", "LC_CTYPE": "", **locale}
    res = sync(kube, tmp_path, "--repo", remote.url, env=env)
    assert res.returncode == 0, res.stderr
    docs = {d["metadata"]["name"]: d for d in kube.applied_docs()}
    assert docs["plain"]["data"] == docs["rendered"]["data"] == {"greeting": greeting}
    assert docs["rendered"]["metadata"]["annotations"]["note"] == "café"


def crd(versions: str) -> str:
    return ("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n"
            "  name: gadgets.example.com\nspec:\n  group: example.com\n  scope: Namespaced\n"
            f"  names: {{kind: Gadget, plural: gadgets}}\n  versions: {versions}\n")


GADGET = "apiVersion: example.com/{version}\nkind: Gadget\nmetadata:\n  name: g\n  namespace: shop\n"


def test_a_custom_resource_whose_crd_is_in_the_same_commit_is_applied_by_the_next_pass(kube, tmp_path):
    remote = make_bare_remote(tmp_path / "remotes", {
        "crd.yaml": crd("[{name: v1, served: true, storage: true}]"),
        "gadget.yaml": GADGET.format(version="v1")})
    first = sync(kube, tmp_path, "--repo", remote.url)
    assert first.returncode == 15
    assert "1 of 2 objects failed to apply: Gadget shop/g (gadget.yaml)" in first.stderr
    assert 'no matches for kind "Gadget"' in first.stderr
    assert list(kube.objects()) == ["customresourcedefinition.apiextensions.k8s.io||gadgets.example.com"]
    second = sync(kube, tmp_path, "--repo", remote.url)
    assert second.returncode == 0, second.stderr
    assert "gadget.example.com|shop|g" in kube.objects()


def test_a_crd_version_that_is_not_served_is_refused(kube, tmp_path):
    remote = make_bare_remote(tmp_path / "remotes", {
        "crd.yaml": crd("[{name: v1, served: false, storage: false}, {name: v2, served: true, storage: true}]")})
    assert sync(kube, tmp_path, "--repo", remote.url).returncode == 0
    push(remote, tmp_path, {"gadget.yaml": GADGET.format(version="v1")})
    res = sync(kube, tmp_path, "--repo", remote.url)
    assert res.returncode == 15 and 'no matches for kind "Gadget" in version "example.com/v1"' in res.stderr
    push(remote, tmp_path, {"gadget.yaml": GADGET.format(version="v2")})
    res = sync(kube, tmp_path, "--repo", remote.url)
    assert res.returncode == 0, res.stderr


def test_the_context_decides_the_default_namespace_and_a_missing_one_fails(kube, tmp_path):
    contexts = {"FAKE_KUBECTL_CONTEXTS": "*dev=team-dev,prod=team-prod"}
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
    remote = make_bare_remote(tmp_path / "remotes", {"cm.yaml": cm})
    res = sync(kube, tmp_path, "--repo", remote.url, "--prune", "--context", "prod", env=contexts)
    assert res.returncode == 0, res.stderr
    assert list(kube.objects()) == ["configmap.|team-prod|settings"]
    res = sync(kube, tmp_path, "--repo", remote.url, "--prune", env=contexts)  # the current one: dev
    assert res.returncode == 0, res.stderr
    assert list(kube.objects()) == ["configmap.|team-dev|settings", "configmap.|team-prod|settings"]
    # no current context (no kubeconfig: `config view --minify` exits 1): kubectl falls back to
    # localhost:8080, the pass fails like an unreachable cluster, with no traceback
    res = sync(kube, tmp_path, "--repo", remote.url, "--prune", "--force", env={"FAKE_KUBECTL_CONTEXTS": ""})
    assert res.returncode == 15, res.stderr
    assert "connection to the server localhost:8080 was refused" in res.stderr
    assert "Traceback" not in res.stderr
    res = sync(kube, tmp_path, "--repo", remote.url, "--context", "staging", env=contexts)
    assert res.returncode == 15 and 'context "staging" does not exist' in res.stderr


# The README's tab cases (`gitops bump`): read by both YAML parsers...
TAB_MANIFESTS = {
    "tabs/config.yaml": (
        "%YAML\t1.2\n---\t!!map\napiVersion: v1\nkind:\tConfigMap\nmetadata:\n"
        "  name: &n\ttabs\t# a tab before a comment\n  namespace\t: shop\n"
        "data:\n  quoted: \"a\\tb\"\t\n  single: 'c\t# d'\n  block: |\n    e:\tf\n  mode:\t!!str 0755\t\n"
        "  same: *n\n"),
    # libyaml refuses the `:` in a flow plain scalar; the pure parser it falls back to refused the tab
    "tabs/pod.yaml": ("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec:\n"
                      "  containers: [{name: a, image: team/app:v1}]\n"
                      "  restartPolicy: Always\t# a tab before a comment\n"),
}
# ...and read by libyaml alone (a tab inside a plain scalar)
LIBYAML_ONLY = {"libyaml-only/plain.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n"
                                           "data:\n  key: a\tb\n"}


@pytest.mark.parametrize("parser", ["default", "python"])
def test_manifests_with_tabs_are_read_as_lint_and_bump_read_them(kube, tmp_path, parser):
    """sync read manifests with the pure-Python parser alone: a tab before a comment, after a `:` or `---`,
    in a `%YAML` directive (files lint and bump read) was `not valid YAML`, exit 15, nothing applied.  Now
    it reads what they read, with the same values, with libyaml or with the pure parser alone."""
    remote = make_bare_remote(tmp_path / "remotes", {**TAB_MANIFESTS, **LIBYAML_ONLY})
    env = {"GITOPS_YAML_PARSER": "python"} if parser == "python" else {}
    res = sync(kube, tmp_path, "--repo", remote.url, "--path", "tabs", env=env)
    assert res.returncode == 0, res.stderr
    docs = {d["metadata"]["name"]: d for d in kube.applied_docs()}
    assert docs["tabs"]["data"] == {"quoted": "a\tb", "single": "c\t# d", "block": "e:\tf\n", "mode": "0755",
                                    "same": "tabs"}
    assert docs["tabs"]["metadata"]["namespace"] == "shop"
    assert docs["p"]["spec"] == {"containers": [{"name": "a", "image": "team/app:v1"}], "restartPolicy": "Always"}
    lint = subprocess.run([str(GITOPS), "lint", "."], cwd=remote.clone(tmp_path / "checkout"),
                          env=gitops_env(env), capture_output=True, text=True, timeout=120)
    only = sync(kube, tmp_path, "--repo", remote.url, "--path", "libyaml-only", env=env)
    if parser == "default":  # libyaml reads a tab inside a plain scalar: lint, bump and sync alike
        assert lint.returncode == 0, lint.stdout + lint.stderr
        assert only.returncode == 0, only.stderr
        assert kube.applied_docs()[0]["data"] == {"key": "a\tb"}
    else:  # the pure parser does not: lint and sync name the same line
        assert lint.returncode == 1 and "libyaml-only/plain.yaml:6:9: GL000 YAML does not parse" in lint.stdout
        assert "tabs/" not in lint.stdout
        assert only.returncode == 15
        assert "libyaml-only/plain.yaml:6: not valid YAML: " in only.stderr and "found character '\\t'" in only.stderr


GIT_LEFTOVERS = ("shallow.lock", "index.lock", "config.lock", "HEAD.lock", "packed-refs.lock",
                 "refs/gitops-sync/head.lock", "objects/pack/tmp_pack_AbCdEf")


def test_locks_a_killed_pass_left_in_the_cache_are_removed_with_a_warning(remote, kube, tmp_path):
    """A pass killed with its git (an evicted pod) leaves git's lock files in the cache (a volume): the next
    pass holds the pass lock, so they are stale; it removes them and says so, instead of failing forever."""
    first = sync(kube, tmp_path, "--repo", remote.url, "--path", "cluster")
    assert first.returncode == 0, first.stderr
    [git_dir] = (tmp_path / "cache").glob("*/checkout/.git")
    for rel in GIT_LEFTOVERS:
        (git_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (git_dir / rel).write_text("")
    new = push(remote, tmp_path, {"cluster/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                                        "  name: extra\n  namespace: shop\n"})
    res = sync(kube, tmp_path, "--repo", remote.url, "--path", "cluster")
    assert res.returncode == 0, res.stderr
    assert res.stdout == new + "\n"
    [warning] = [ln for ln in res.stderr.splitlines() if "interrupted git left behind" in ln]
    for rel in GIT_LEFTOVERS:
        assert f".git/{rel}" in warning
        assert not (git_dir / rel).exists()
    again = sync(kube, tmp_path, "--repo", remote.url, "--path", "cluster", "--force")
    assert again.returncode == 0 and "left behind" not in again.stderr


@pytest.mark.parametrize("damage", ["no HEAD", "index"])
def test_a_cached_checkout_git_cannot_use_is_made_again(remote, kube, tmp_path, damage):
    first = sync(kube, tmp_path, "--repo", remote.url, "--path", "cluster")
    assert first.returncode == 0, first.stderr
    [git_dir] = (tmp_path / "cache").glob("*/checkout/.git")
    if damage == "no HEAD":  # killed while `git init` wrote it
        (git_dir / "HEAD").unlink()
    else:
        (git_dir / "index").write_bytes(b"DIRC\0\0\0\2garbage")
    res = sync(kube, tmp_path, "--repo", remote.url, "--path", "cluster", "--force")
    assert res.returncode == 0, res.stderr
    assert res.stdout == first.stdout
    assert "made again" in res.stderr
    assert len(kube.calls("apply")) == 2


def test_a_sha256_deploy_repo_is_fetched_and_the_cache_takes_the_remotes_object_format(kube, tmp_path):
    """The cache was `git init` in git's default format, then fetched: a SHA-256 deploy repo was exit 10
    ("mismatched algorithms: client sha1; server sha256"), and so was a SHA-1 one under
    GIT_DEFAULT_HASH=sha256.  Now the cache takes the remote's format, as a clone does; a cache already
    made in the other format (the repo moved) is made again, with a warning."""
    remote = make_bare_remote(tmp_path / "remotes", FILES, object_format="sha256")
    first = sync(kube, tmp_path, "--repo", remote.url, "--path", "cluster")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == remote.head() and len(remote.head()) == 64
    assert "made again" not in first.stderr
    head = push(remote, tmp_path, {"cluster/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n"})
    second = sync(kube, tmp_path, "--repo", remote.url, "--path", "cluster")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == head
    sha1 = make_bare_remote(tmp_path / "sha1", FILES)
    for _ in range(2):  # a new cache, then the one made
        res = sync(kube, tmp_path, "--repo", sha1.url, "--path", "cluster", env={"GIT_DEFAULT_HASH": "sha256"})
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == sha1.head() and "made again" not in res.stderr
    # the SHA-1 repo's URL now serves a SHA-256 one: the cached SHA-1 checkout is made again
    subprocess.run(["rm", "-rf", str(sha1.path)], check=True)
    moved = make_bare_remote(tmp_path / "sha1", FILES, object_format="sha256")
    res = sync(kube, tmp_path, "--repo", moved.url, "--path", "cluster")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == moved.head()
    assert "holds sha1 objects" in res.stderr and "sha256 ones: made again" in res.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs")
def test_a_full_cache_is_exit_74_naming_it_and_the_next_pass_recovers(remote, kube, tmp_path, small_fs):
    """Whatever git's words for it (`failed to write new configuration file`, `unable to write file`, ...),
    a full `--cache-dir` is exit 74 and the hint names it (not TMPDIR, where a bump's clone goes)."""
    fs = small_fs("cache-fs")
    cache = fs.root / "cache"
    args = ["sync", "--kubectl", str(FAKE), "--cache-dir", str(cache), "--repo", remote.url, "--path", "cluster"]

    def run_sync():
        return subprocess.run([str(GITOPS), *args], env=gitops_env(kube.env), text=True, capture_output=True,
                              timeout=120)

    assert run_sync().returncode == 0
    push(remote, tmp_path, {f"cluster/more-{i}.yaml": f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m{i}\n"
                            f"data:\n  x: \"{'y' * 2000}\"\n" for i in range(20)})
    for free in (0, 8, 32):
        fs.fill(free)
        res = run_sync()
        assert res.returncode == 74, (free, res.stderr)
        [hint] = [ln for ln in res.stderr.splitlines() if ln.startswith("hint:")]
        assert hint.startswith(f"hint: free some space on the file system of {cache}") and "TMPDIR" not in hint
    fs.empty()
    res = run_sync()
    assert res.returncode == 0, res.stderr
    assert res.stdout == remote.head() + "\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="chowns the cache to another user")
def test_a_cache_another_user_owns_is_refused_not_removed(remote, kube, tmp_path):
    """git refuses a repository another user owns (safe.directory): the cached checkout is theirs, so it is
    named with the setting that trusts it (exit 10), never taken for a damaged one and made again."""
    first = sync(kube, tmp_path, "--repo", remote.url, "--path", "cluster")
    assert first.returncode == 0, first.stderr
    [checkout] = (tmp_path / "cache").glob("*/checkout")
    subprocess.run(["chown", "-R", "65534:65534", str(checkout)], check=True)
    res = sync(kube, tmp_path, "--repo", remote.url, "--path", "cluster", "--force")
    assert res.returncode == 10, res.stderr
    assert "dubious ownership" in res.stderr and "safe.directory" in res.stderr
    assert "made again" not in res.stderr
    assert (checkout / ".git").stat().st_uid == 65534


def test_kubectls_warnings_are_shown_when_the_apply_succeeds(remote, kube, tmp_path):
    """The API server's warnings (a deprecated API, an admission webhook's) were shown only when the apply
    failed."""
    warn = tmp_path / "warn_kubectl.sh"
    warn.write_text("#!/bin/sh\ncase \" $* \" in *\" apply \"*) echo 'Warning: policy/v1beta1 PodSecurityPolicy is "
                    f"deprecated in v1.21+' >&2;; esac\nexec {sys.executable} {FAKE} \"$@\"\n")
    warn.chmod(0o755)
    res = subprocess.run([str(GITOPS), "sync", "--kubectl", str(warn), "--cache-dir", str(tmp_path / "cache"),
                          "--repo", remote.url], env=gitops_env(kube.env), text=True, capture_output=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert "kubectl: Warning: policy/v1beta1 PodSecurityPolicy is deprecated in v1.21+\n" in res.stderr


def test_a_failed_object_sharing_its_name_with_one_in_another_namespace_names_both(kube, tmp_path):
    """kubectl's lines name no namespace (`configmap/x serverside-applied`): the failure of zzz/x was
    reported as aaa/x's, the applied one."""
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: {}\n"
    remote = make_bare_remote(tmp_path / "remotes", {"x.yaml": cm.format("aaa") + "---\n" + cm.format("zzz")})
    res = sync(kube, tmp_path, "--repo", remote.url, env={"FAKE_KUBECTL_FAIL": "configmap/x@zzz"})
    assert res.returncode == 15, res.stderr
    assert ("error: 1 of 2 objects failed to apply: ConfigMap aaa/x (x.yaml) or ConfigMap zzz/x (x.yaml) (kubectl "
            "names no namespace: which one is not known)") in res.stderr
