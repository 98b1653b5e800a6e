"""`gitops sync --prune` compares objects as the API server keeps them: writing the namespace differently,
or a kind moving API group, is not a removal (the installed command against the fake kubectl, see
tests/integration/test_sync.py)."""

from __future__ import annotations

import pytest

from tests.fixtures.gitremotes import DeployRemote, make_bare_remote
from tests.integration.test_sync import Kube, push, sync

pytestmark = pytest.mark.integration

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n{ns}data: {{a: '1'}}\n"
ROLE = ("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\n{ns}"
        "rules: []\n")
WIDGETS_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.example.com
spec:
  group: example.com
  scope: {scope}
  names: {{kind: {kind}, plural: {plural}}}
  versions: [{{name: v1, served: true, storage: true}}]
"""


def ns(namespace: str | None) -> str:
    return f"  namespace: {namespace}\n" if namespace is not None else ""


@pytest.fixture
def kube(tmp_path) -> Kube:
    return Kube(tmp_path)


def start(tmp_path, files: dict[str, str]) -> DeployRemote:
    return make_bare_remote(tmp_path / "remotes", files)


def passes(kube: Kube, tmp_path, remote: DeployRemote, changes: list[dict[str, str]],
           env: dict[str, str] | None = None) -> None:
    """A pass with --prune on the first commit, then one per change; every pass must succeed."""
    first = sync(kube, tmp_path, "--repo", remote.url, "--prune", "-v", env=env)
    assert first.returncode == 0, first.stderr
    for files in changes:
        push(remote, tmp_path, files)
        res = sync(kube, tmp_path, "--repo", remote.url, "--prune", "-v", env=env)
        assert res.returncode == 0, res.stderr
        assert "pruned" not in res.stderr


@pytest.mark.parametrize(("before", "after"), [(None, "default"), ("default", None)])
def test_writing_the_default_namespace_or_not_never_prunes_the_object(kube, tmp_path, before, after):
    remote = start(tmp_path, {"cm.yaml": CM.format(ns=ns(before))})
    passes(kube, tmp_path, remote, [{"cm.yaml": CM.format(ns=ns(after))}])
    assert kube.calls("delete") == []
    assert "configmap.|default|settings" in kube.objects()


def test_the_context_namespace_is_the_default_one(kube, tmp_path):
    env = {"FAKE_KUBECTL_NAMESPACE": "team"}
    remote = start(tmp_path, {"cm.yaml": CM.format(ns="")})
    passes(kube, tmp_path, remote, [{"cm.yaml": CM.format(ns=ns("team"))}], env=env)
    assert kube.calls("delete") == [] and list(kube.objects()) == ["configmap.|team|settings"]
    # `namespace: default` is another object: the copy in the context's namespace is pruned, with -n
    push(remote, tmp_path, {"cm.yaml": CM.format(ns=ns("default"))})
    res = sync(kube, tmp_path, "--repo", remote.url, "--prune", env=env)
    assert res.returncode == 0, res.stderr
    [delete] = [c["argv"] for c in kube.calls("delete")]
    assert delete[:2] == ["delete", "configmap"] and delete[-2:] == ["-n", "team"]
    assert list(kube.objects()) == ["configmap.|default|settings"]
    assert "pruned ConfigMap team/settings" in res.stderr


def test_a_changed_context_namespace_prunes_the_copy_left_in_the_old_one(kube, tmp_path):
    remote = start(tmp_path, {"cm.yaml": CM.format(ns="")})
    assert sync(kube, tmp_path, "--repo", remote.url, "--prune").returncode == 0
    res = sync(kube, tmp_path, "--repo", remote.url, "--prune", "--force", env={"FAKE_KUBECTL_NAMESPACE": "b"})
    assert res.returncode == 0, res.stderr
    assert list(kube.objects()) == ["configmap.|b|settings"]
    assert "pruned ConfigMap default/settings" in res.stderr


@pytest.mark.parametrize(("before", "after"), [(None, "shop"), ("shop", None), ("shop", "other")])
def test_a_namespace_on_a_cluster_scoped_kind_never_prunes_it(kube, tmp_path, before, after):
    remote = start(tmp_path, {"role.yaml": ROLE.format(ns=ns(before))})
    passes(kube, tmp_path, remote, [{"role.yaml": ROLE.format(ns=ns(after))}])
    assert kube.calls("delete") == []
    assert list(kube.objects()) == ["clusterrole.rbac.authorization.k8s.io||reader"]


def test_a_kind_moving_api_group_is_not_a_removal(kube, tmp_path):
    old = "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: shop\n"
    remote = start(tmp_path, {"ing.yaml": old})
    first = sync(kube, tmp_path, "--repo", remote.url, "--prune", env={"FAKE_KUBECTL_LEGACY": "1"})
    assert first.returncode == 0, first.stderr
    # the cluster is upgraded (no more extensions Ingress) and the repo follows
    push(remote, tmp_path, {"ing.yaml": old.replace("extensions/v1beta1", "networking.k8s.io/v1")})
    for _ in range(2):
        res = sync(kube, tmp_path, "--repo", remote.url, "--prune", "--force")
        assert res.returncode == 0, res.stderr
    assert kube.calls("delete") == []
    assert "ingress.networking.k8s.io|shop|web" in kube.objects()


def test_custom_resources_take_their_scope_from_the_crd_or_the_server(kube, tmp_path):
    crds = {"crds/gadgets.yaml": WIDGETS_CRD.format(kind="Gadget", plural="gadgets", scope="Cluster"),
            "crds/widgets.yaml": WIDGETS_CRD.format(kind="Widget", plural="widgets", scope="Namespaced")}
    cr = "apiVersion: example.com/v1\nkind: {kind}\nmetadata:\n  name: one\n{ns}"
    remote = start(tmp_path, crds)
    assert sync(kube, tmp_path, "--repo", remote.url, "--prune").returncode == 0
    # another sync instance (--path apps) applies the custom resources; their CRDs are not in its paths
    apps = ("--repo", remote.url, "--prune", "--path", "apps")
    push(remote, tmp_path, {"apps/gadget.yaml": cr.format(kind="Gadget", ns=""),
                            "apps/widget.yaml": cr.format(kind="Widget", ns=ns("a"))})
    assert sync(kube, tmp_path, *apps).returncode == 0
    push(remote, tmp_path, {"apps/gadget.yaml": cr.format(kind="Gadget", ns=ns("a")),
                            "apps/widget.yaml": cr.format(kind="Widget", ns=ns("b"))})
    res = sync(kube, tmp_path, *apps)
    assert res.returncode == 0, res.stderr
    assert kube.calls("api-resources") != []  # asked: neither kind is built in or in these paths
    [delete] = [c["argv"] for c in kube.calls("delete")]  # the Widget moved namespace; the Gadget did not
    assert delete[:2] == ["delete", "widget.v1.example.com"] and delete[-2:] == ["-n", "a"]
    objects = kube.objects()
    assert "gadget.example.com||one" in objects and "widget.example.com|b|one" in objects
    assert "widget.example.com|a|one" not in objects


GATEWAY_CRDS = {
    "crds/istio.yaml": "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n"
                       "  name: gateways.networking.istio.io\nspec:\n  group: networking.istio.io\n"
                       "  scope: Namespaced\n  names: {kind: Gateway, plural: gateways}\n"
                       "  versions: [{name: v1, served: true, storage: true}]\n",
    "crds/gateway-api.yaml": "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n"
                             "  name: gateways.gateway.networking.k8s.io\nspec:\n"
                             "  group: gateway.networking.k8s.io\n  scope: Namespaced\n"
                             "  names: {kind: Gateway, plural: gateways}\n"
                             "  versions: [{name: v1, served: true, storage: true}]\n",
}
GW = "apiVersion: {group}/v1\nkind: Gateway\nmetadata:\n  name: public\n  namespace: edge\n"


def test_a_kind_of_the_same_name_in_another_api_group_is_another_object(kube, tmp_path):
    remote = start(tmp_path, GATEWAY_CRDS)
    assert sync(kube, tmp_path, "--repo", remote.url, "--prune").returncode == 0
    push(remote, tmp_path, {"apps/gw.yaml": GW.format(group="networking.istio.io")})
    assert sync(kube, tmp_path, "--repo", remote.url, "--prune").returncode == 0
    push(remote, tmp_path, {"apps/gw.yaml": GW.format(group="gateway.networking.k8s.io")})
    res = sync(kube, tmp_path, "--repo", remote.url, "--prune")
    assert res.returncode == 0, res.stderr
    assert "pruned Gateway edge/public" in res.stderr
    [delete] = [c["argv"] for c in kube.calls("delete")]
    assert delete[:2] == ["delete", "gateway.v1.networking.istio.io"] and delete[-2:] == ["-n", "edge"]
    gateways = sorted(k for k in kube.objects() if k.startswith("gateway."))
    assert gateways == ["gateway.gateway.networking.k8s.io|edge|public"]


def test_both_kinds_of_the_same_name_are_kept_in_the_inventory(kube, tmp_path):
    remote = start(tmp_path, GATEWAY_CRDS)
    assert sync(kube, tmp_path, "--repo", remote.url, "--prune").returncode == 0
    push(remote, tmp_path, {"apps/istio.yaml": GW.format(group="networking.istio.io"),
                            "apps/gateway-api.yaml": GW.format(group="gateway.networking.k8s.io")})
    assert sync(kube, tmp_path, "--repo", remote.url, "--prune").returncode == 0
    push(remote, tmp_path, {}, remove=("apps/istio.yaml", "apps/gateway-api.yaml"))
    res = sync(kube, tmp_path, "--repo", remote.url, "--prune")
    assert res.returncode == 0, res.stderr
    assert sorted(c["argv"][1] for c in kube.calls("delete")) == [
        "gateway.v1.gateway.networking.k8s.io", "gateway.v1.networking.istio.io"]
    assert not any(k.startswith("gateway.") for k in kube.objects())


def test_an_object_the_guard_kept_stays_in_the_inventory_and_is_pruned_later(kube, tmp_path):
    remote = start(tmp_path, {"crds/widgets.yaml": WIDGETS_CRD.format(kind="Widget", plural="widgets",
                                                                      scope="Namespaced")})
    assert sync(kube, tmp_path, "--repo", remote.url, "--prune").returncode == 0
    cr = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: one\n  namespace: {ns}\n"
    apps = ("--repo", remote.url, "--prune", "--path", "apps")  # the CRD is not in these paths
    push(remote, tmp_path, {"apps/widget.yaml": cr.format(ns="a")})
    assert sync(kube, tmp_path, *apps).returncode == 0
    push(remote, tmp_path, {"apps/widget.yaml": cr.format(ns="b")})
    # the server's discovery of example.com fails: the Widget's scope is unknown, a/one may be b/one
    res = sync(kube, tmp_path, *apps, env={"FAKE_KUBECTL_PARTIAL_DISCOVERY": "example.com"})
    assert res.returncode == 0, res.stderr
    assert "Widget a/one: not pruned, it may be Widget b/one applied by this pass" in res.stderr
    assert kube.calls("delete") == [] and "widget.example.com|a|one" in kube.objects()
    # discovery answers again: the next pass knows Widgets are namespaced and prunes the old copy
    res = sync(kube, tmp_path, *apps, "--force")
    assert res.returncode == 0, res.stderr
    assert "pruned Widget a/one" in res.stderr
    assert "widget.example.com|a|one" not in kube.objects() and "widget.example.com|b|one" in kube.objects()


def test_legacy_and_new_group_of_a_moved_kind_are_one_object_on_the_server(kube, tmp_path):
    legacy = {"FAKE_KUBECTL_LEGACY": "1"}
    old = "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: shop\n"
    remote = start(tmp_path, {"ing.yaml": old})
    assert sync(kube, tmp_path, "--repo", remote.url, "--prune", env=legacy).returncode == 0
    push(remote, tmp_path, {"ing.yaml": old.replace("extensions/v1beta1", "networking.k8s.io/v1")})
    res = sync(kube, tmp_path, "--repo", remote.url, "--prune", env=legacy)
    assert res.returncode == 0, res.stderr
    assert [k for k in kube.objects() if k.startswith("ingress.")] == ["ingress.networking.k8s.io|shop|web"]
    push(remote, tmp_path, {"cm.yaml": CM.format(ns="")}, remove=("ing.yaml",))
    res = sync(kube, tmp_path, "--repo", remote.url, "--prune", env=legacy)
    assert res.returncode == 0, res.stderr
    assert "pruned Ingress shop/web" in res.stderr
    assert not [k for k in kube.objects() if k.startswith("ingress.")]


def test_a_moved_kind_recorded_from_a_group_the_upgraded_server_dropped_is_pruned_through_the_new_one(
        kube, tmp_path):
    # applied as extensions/v1beta1 Ingress before the upgrade; the cluster then stops serving `extensions`
    # (Kubernetes 1.22) and the repo drops the Ingress: deleting it as `ingress.v1beta1.extensions` would fail
    # on every pass ("the server doesn't have a resource type"); it goes through networking.k8s.io instead
    old = "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: shop\n"
    remote = start(tmp_path, {"ing.yaml": old, "cm.yaml": CM.format(ns=ns("shop"))})
    first = sync(kube, tmp_path, "--repo", remote.url, "--prune", env={"FAKE_KUBECTL_LEGACY": "1"})
    assert first.returncode == 0, first.stderr
    push(remote, tmp_path, {}, remove=("ing.yaml",))
    res = sync(kube, tmp_path, "--repo", remote.url, "--prune")
    assert res.returncode == 0, res.stderr
    assert "pruned Ingress shop/web" in res.stderr
    assert [c["argv"][:2] for c in kube.calls("delete")] == [["delete", "ingress.networking.k8s.io"]]
    assert len(kube.calls("api-resources")) == 1  # asked once, for the moved kind
    assert not [k for k in kube.objects() if k.startswith("ingress.")]
    again = sync(kube, tmp_path, "--repo", remote.url, "--prune", "--force")
    assert again.returncode == 0, again.stderr
    assert len(kube.calls("delete")) == 1  # the inventory forgot it


def test_a_moved_kind_is_deleted_through_its_recorded_group_while_the_server_serves_it(kube, tmp_path):
    legacy = {"FAKE_KUBECTL_LEGACY": "1"}
    old = "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: shop\n"
    remote = start(tmp_path, {"ing.yaml": old, "cm.yaml": CM.format(ns=ns("shop"))})
    assert sync(kube, tmp_path, "--repo", remote.url, "--prune", env=legacy).returncode == 0
    push(remote, tmp_path, {}, remove=("ing.yaml",))
    res = sync(kube, tmp_path, "--repo", remote.url, "--prune", env=legacy)
    assert res.returncode == 0, res.stderr
    assert [c["argv"][:2] for c in kube.calls("delete")] == [["delete", "ingress.v1beta1.extensions"]]
    assert not [k for k in kube.objects() if k.startswith("ingress.")]


NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"
WEB = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec: {}\n"


def test_a_namespace_or_crd_the_applied_objects_need_is_not_pruned(kube, tmp_path):
    """The Namespace (or CRD) manifest moved elsewhere while its objects stay: --prune deleted the Namespace
    `shop` right after applying `shop/web` (on a real server: everything in it), the CRD right after
    applying its Widget (every Widget, cluster-wide).  Kept in the inventory, with a warning, until nothing
    the pass applies needs it; then pruned."""
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: shop\n"
    crd = WIDGETS_CRD.format(kind="Widget", plural="widgets", scope="Namespaced")
    remote = start(tmp_path, {"ns.yaml": NAMESPACE, "crd.yaml": crd})
    assert sync(kube, tmp_path, "--repo", remote.url, "--prune").returncode == 0
    push(remote, tmp_path, {"web.yaml": WEB, "widget.yaml": widget})
    assert sync(kube, tmp_path, "--repo", remote.url, "--prune").returncode == 0
    push(remote, tmp_path, {}, remove=("ns.yaml", "crd.yaml"))
    res = sync(kube, tmp_path, "--repo", remote.url, "--prune")
    assert res.returncode == 0, res.stderr
    assert kube.calls("delete") == []
    assert ("warning: Namespace shop: not pruned: 2 object(s) this pass applied need it (Deployment shop/web, "
            "...), and deleting it deletes everything in it; kept in the inventory") in res.stderr
    assert ("warning: CustomResourceDefinition widgets.example.com: not pruned: 1 object(s) this pass applied "
            "need it (Widget shop/w1), and deleting it deletes every object of its kinds, cluster-wide") in res.stderr
    assert "namespace.||shop" in kube.objects() and any("widgets.example.com" in k for k in kube.objects())
    # the objects gone too: the next pass prunes them all, the Namespace and the CRD last
    push(remote, tmp_path, {"cm.yaml": CM.format(ns="")}, remove=("web.yaml", "widget.yaml"))
    res = sync(kube, tmp_path, "--repo", remote.url, "--prune")
    assert res.returncode == 0, res.stderr
    pruned = [c["argv"][1] for c in kube.calls("delete")]
    assert len(pruned) == 4 and {p.split(".")[0] for p in pruned[2:]} == {"namespace", "customresourcedefinition"}
    assert "namespace.||shop" not in kube.objects()


def test_a_damaged_state_file_is_set_aside_with_a_warning(kube, tmp_path):
    """A truncated state file was read as empty with no word: its objects were never pruned, and the next
    save forgot them for good."""
    remote = start(tmp_path, {"a.yaml": CM.format(ns=""), "b.yaml": CM.format(ns="").replace("settings", "b")})
    assert sync(kube, tmp_path, "--repo", remote.url, "--prune").returncode == 0
    [state] = (tmp_path / "cache").glob("*/state-*.json")
    state.write_text(state.read_text()[:40])
    push(remote, tmp_path, {}, remove=("b.yaml",))
    res = sync(kube, tmp_path, "--repo", remote.url, "--prune")
    assert res.returncode == 0, res.stderr
    assert (f"warning: {state}: the state of the last pass cannot be read (") in res.stderr
    assert f"set aside as {state.name}.damaged: the objects it listed are unknown now" in res.stderr
    assert kube.calls("delete") == [] and state.with_name(state.name + ".damaged").read_text().startswith("{")


def test_a_pass_killed_during_its_apply_leaves_what_it_applied_in_the_inventory(kube, tmp_path):
    """A pass stopped while kubectl applied (the CronJob's deadline, an eviction) saved no inventory: an
    object it added was never pruned once it left the repo."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.fixtures.cli import GITOPS, gitops_env
    from tests.fixtures.procs import stop_process
    from tests.integration.test_sync import FAKE

    slow = tmp_path / "slow_kubectl.py"  # the fake kubectl, holding on after an apply until stopped
    slow.write_text(f"""#!{sys.executable}
import os, subprocess, sys, time
data = sys.stdin.read() if "-f" in sys.argv else None
res = subprocess.run([sys.executable, {str(FAKE)!r}, *sys.argv[1:]], input=data, text=True, capture_output=True)
if "apply" in sys.argv:
    open({str(tmp_path / "applying")!r}, "w").write(str(os.getpid()))
    time.sleep(60)
sys.stdout.write(res.stdout); sys.stderr.write(res.stderr); sys.exit(res.returncode)
""")
    slow.chmod(0o755)
    cm = CM.format(ns="")
    remote = start(tmp_path, {"a.yaml": cm})
    assert sync(kube, tmp_path, "--repo", remote.url, "--prune").returncode == 0
    push(remote, tmp_path, {"c.yaml": cm.replace("settings", "added")})
    cmd = [str(GITOPS), "sync", "--kubectl", str(slow), "--cache-dir", str(tmp_path / "cache"), "--repo",
           remote.url, "--prune"]
    proc = subprocess.Popen(cmd, env=gitops_env(kube.env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "applying").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert (tmp_path / "applying").exists(), proc.communicate()
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == 130
    finally:
        stop_process(proc)
    assert "configmap.|default|added" in kube.objects()  # applied before the pass was stopped
    push(remote, tmp_path, {}, remove=("c.yaml",))
    res = sync(kube, tmp_path, "--repo", remote.url, "--prune")
    assert res.returncode == 0, res.stderr
    assert "pruned ConfigMap default/added" in res.stderr and "configmap.|default|added" not in kube.objects()


def test_prune_or_dry_run_on_the_commit_applied_without_them_is_no_no_op(kube, tmp_path):
    """Passes without --prune applied the commit; a pass with --prune on it said "already applied: nothing
    to do" and pruned nothing until the next commit; --dry-run on it validated nothing."""
    remote = start(tmp_path, {"a.yaml": CM.format(ns=""), "b.yaml": CM.format(ns="").replace("settings", "b")})
    assert sync(kube, tmp_path, "--repo", remote.url).returncode == 0
    push(remote, tmp_path, {}, remove=("b.yaml",))
    assert sync(kube, tmp_path, "--repo", remote.url).returncode == 0  # applied, nothing pruned
    res = sync(kube, tmp_path, "--repo", remote.url, "--dry-run")
    assert res.returncode == 0 and "nothing to do" not in res.stderr and "dry run" in res.stderr
    res = sync(kube, tmp_path, "--repo", remote.url, "--prune")
    assert res.returncode == 0, res.stderr
    assert "pruned ConfigMap default/b" in res.stderr and "configmap.|default|b" not in kube.objects()
    res = sync(kube, tmp_path, "--repo", remote.url, "--prune")  # now a no-op
    assert res.returncode == 0 and "is already applied: nothing to do" in res.stderr
