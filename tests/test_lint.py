"""gitops lint: each rule with its tricky cases, locations, suppressions, config, formatters, discovery."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gitops_cli import lint
from gitops_cli.errors import ConfigError, UsageError

DIGEST = "sha256:" + "a" * 64
DEFAULT = lint.config_from_settings({})


def findings(text: str, config: lint.LintConfig = DEFAULT, path: str = "f.yaml",
             dockerfile: bool | None = None) -> list[tuple[int, int, str]]:
    return [(f.line, f.column, f.rule) for f in lint.lint_text(path, text, config, dockerfile)]


def codes(value: str, config: lint.LintConfig = DEFAULT) -> list[str]:
    """Rules reported for one container image value (written as a plain YAML scalar)."""
    text = f"spec:\n  containers:\n    - name: c\n      image: {value}\n"
    return sorted({f.rule for f in lint.lint_text("p.yaml", text, config)})


# --- rules on one reference ------------------------------------------------------------------------

@pytest.mark.parametrize("value, want", [
    ("nginx:1.27.3", []),
    ("nginx:latest", ["GL001"]),
    ("nginx:LaTeSt", ["GL001"]),
    ("nginx", ["GL002"]),
    ("docker.io/library/nginx", ["GL002"]),
    ("localhost:5000/app", ["GL002"]),          # a port, not a tag
    ("localhost:5000/app:1.0", []),
    ("registry.example.com:443/team/app", ["GL002"]),
    ("'[::1]:5000/app'", ["GL002"]),            # IPv6 host with a port, no tag
    ("'[2001:db8::1]:5000/app:v2'", []),
    (f"nginx:latest@{DIGEST}", []),             # the digest pins it
    (f"nginx@{DIGEST}", []),
    (f"app:main@{DIGEST}", []),
    ("app:main", ["GL003"]),
    ("app:Develop", ["GL003"]),
    ("app:1.4.0-SNAPSHOT", ["GL003"]),
    ("app:production", ["GL003"]),
    ("app:mainline", []),                       # only whole-tag matches
    ("app:3f2a9c1", []),
    ("MyApp:1.0", ["GL004"]),                   # uppercase repository
    ("app:v1+build", ["GL004"]),                # bad tag character
    ("app:" + "x" * 129, ["GL004"]),            # tag over 128 characters
    ("app@sha256:abc", ["GL004"]),              # malformed digest
    ("'app:'", ["GL004"]),
    ("${IMAGE}", ["GL006"]),
    ("$IMAGE", ["GL006"]),
    ("'{{ .Values.image }}'", ["GL006"]),
    ("<image_url>", ["GL006"]),
    ("app:${TAG}", ["GL006"]),                  # the tag is unknown: no GL002
    ("${REGISTRY}/app", ["GL002", "GL006"]),    # the tag is certainly missing
    ("gcr.io/<<PROJECT>>/hello:latest", ["GL001", "GL006"]),
])
def test_rules_on_container_images(value, want):
    assert codes(value) == want


def test_gl004_messages_name_the_reason():
    def message(value: str) -> str:
        (f,) = lint.lint_text("p.yaml", f"image: {value}\n", DEFAULT)
        assert f.rule == "GL004"
        return f.message

    assert "lowercase" in message("MyApp:1.0")
    assert "128" in message("app:" + "x" * 129)
    assert "digest" in message("app@sha256:abc")
    assert "tag" in message("app:v1+build")


def test_gl005_only_when_required():
    required = lint.config_from_settings({}, require_digest=True)
    assert codes("nginx:1.27", required) == ["GL005"]
    assert codes(f"nginx:1.27@{DIGEST}", required) == []
    assert codes("nginx", required) == ["GL002", "GL005"]
    assert codes("nginx:1.27", lint.config_from_settings({"require-digest": True})) == ["GL005"]
    # the flag wins over a config that turns the rule off
    off = {"rules": {"GL005": "off"}}
    assert codes("nginx:1.27", lint.config_from_settings(off, require_digest=True)) == ["GL005"]


@pytest.mark.parametrize(("value", "want"), [
    ("app:${TAG}", ["GL006"]),                                   # the tag may hold a digest: `1.2@sha256:...`
    ("${IMAGE}", ["GL006"]),                                     # the whole name unknown: tag and digest too
    ("registry.example.com/team/${APP}", ["GL006"]),
    ("${REGISTRY}/app:1.0", ["GL005", "GL006"]),                 # the known tag: certainly no digest
    ("${REGISTRY}/app", ["GL002", "GL005", "GL006"]),
    (f"${{REGISTRY}}/app:1.0@{DIGEST}", ["GL006"]),
])
def test_gl005_is_not_claimed_where_a_placeholder_may_hold_the_digest(value, want):
    """--require-digest: a placeholder in the tag or the last name component may stand for the digest too,
    so only GL006 is certain there; where the tag is known, the missing digest is still GL005."""
    assert codes(value, lint.config_from_settings({}, require_digest=True)) == want


def test_gl006_is_a_warning_others_errors():
    (f,) = lint.lint_text("p.yaml", "image: ${IMAGE}\n", DEFAULT)
    assert f.severity == "warning"
    (f,) = lint.lint_text("p.yaml", "image: nginx\n", DEFAULT)
    assert f.severity == "error"


# --- locations -------------------------------------------------------------------------------------

def test_points_at_the_image_value_with_end_column():
    text = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: web\n    image: nginx:latest\n"
    (f,) = lint.lint_text("pod.yaml", text, DEFAULT)
    assert (f.line, f.column, f.end_line, f.end_column) == (6, 12, 6, 24)
    assert f.image == "nginx:latest"


def test_quoted_value_position_is_the_scalar_start():
    text = 'spec:\n  containers:\n  - image: "nginx:latest"\n'
    assert findings(text) == [(3, 12, "GL001")]


def test_flow_style():
    text = "spec: {containers: [{name: a, image: 'app:dev'}, {name: b, image: \"app:1.0\"}]}\n"
    assert findings(text) == [(1, 38, "GL003")]


def test_anchor_and_alias_reported_once_at_the_anchor():
    text = (
        "a:\n  containers:\n  - image: &img busybox:latest\n"
        "b:\n  containers:\n  - image: *img\n"
    )
    assert findings(text) == [(3, 17, "GL001")]


def test_multi_document_lines():
    text = "kind: A\nimage: nginx:1\n---\n# second\nkind: B\nimage: redis\n---\n---\nimage: app:main\n"
    assert findings(text) == [(6, 8, "GL002"), (9, 8, "GL003")]


def test_crlf():
    text = "spec:\r\n  containers:\r\n  - name: a\r\n    image:   app:latest\r\n"
    (f,) = lint.lint_text("p.yaml", text, DEFAULT)
    assert (f.line, f.column, f.end_column, f.rule) == (4, 14, 24, "GL001")


def test_other_strings_and_comments_are_ignored():
    text = (
        "# image: nginx:latest\n"
        "metadata:\n  annotations:\n    image: nginx:latest\n"
        "spec:\n  containers:\n  - name: a\n    image: nginx:1.2\n"
        "    args: ['--image=busybox:latest']\n"
        "    command:\n    - |\n      image: nginx:latest\n"
    )
    assert findings(text) == []


def test_kustomize_entry_points_at_the_offending_field():
    text = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n"
        "- name: app\n  newTag: latest\n"
        "- name: web\n  newName: ghcr.io/acme/web\n"
        "- name: db\n  newTag: '16'\n  digest: sha256:zz\n"
        "- name: ok\n  newTag: 1.2.3\n"
    )
    assert findings(text, path="kustomization.yaml") == [
        (5, 11, "GL001"),   # at newTag
        (10, 11, "GL004"),  # at the malformed digest
    ]


def test_kustomize_finding_points_at_the_field_its_message_is_about():
    # `newName` replaces `name`: an invalid `newName` was reported at an invalid `name` (the message
    # about one field, the position at another); the same for a placeholder in both
    text = (
        "images:\n"
        "- name: Team/C\n  newName: Team/D\n  newTag: v1\n"
        "- name: ${X}/c\n  newName: ${X}/d\n  newTag: v1\n"
        "- name: Team/E\n  newName: ${Y:-}\n  newTag: v1\n"   # an empty newName: `name` is the image
    )
    got = [(f.line, f.column, f.rule, f.message) for f in lint.lint_text("kustomization.yaml", text, DEFAULT)]
    assert [g[:3] for g in got] == [(3, 12, "GL004"), (6, 12, "GL006"), (8, 9, "GL004")]
    assert "'Team/D'" in got[0][3] and "'${X}/d:v1'" in got[1][3] and "'Team/E'" in got[2][3]


def test_kustomize_entry_without_newtag_or_digest_keeps_the_base_tag():
    # kustomize keeps the base manifest's tag (and digest) when an entry sets only newName or tagSuffix:
    # it does not mean :latest, and the base is linted on its own
    text = (
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nimages:\n"
        "- name: us-central1-docker.pkg.dev/demo/adservice\n  tagSuffix: CONTAINER_IMAGES_TAG_SUFFIX\n"
        "- name: web\n  newName: ghcr.io/acme/web\n"
        "- name: noop\n"
        "- name: empty\n  newName: ghcr.io/acme/empty\n  newTag: ''\n"
        "- name: api\n  newName: ghcr.io/acme/api\n  newTag: main\n"
        "- name: bad\n  newName: Acme/Bad\n"
    )
    assert findings(text, path="kustomization.yaml") == [(14, 11, "GL003"), (16, 12, "GL004")]
    required = lint.config_from_settings({"require-digest": True})
    assert ("GL005" in {rule for _, _, rule in findings(text, required, path="kustomization.yaml")})
    assert [(line, rule) for line, _, rule in findings(text, required, path="kustomization.yaml")] == [
        (14, "GL003"), (14, "GL005"), (16, "GL004")]


def test_argo_cd_application_override_strings_are_linted_at_their_parts():
    # `spec.source.kustomize.images` (Argo CD runs `kustomize edit set image` with each): the same rules as a
    # kustomization's images: entry, reported at the tag or digest inside the string
    text = (
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nspec:\n  source:\n    kustomize:\n      images:\n"
        "      - team/app:latest\n"
        "      - \"x=team/api:main\"\n"
        "      - y=team/worker\n"            # no tag: kustomize keeps the manifest's
        "      - team/db@sha256:abc\n"
        "      - team/ok:1.2.3\n"
    )
    got = lint.lint_text("app.yaml", text, DEFAULT)
    assert [(f.line, f.column, f.end_column, f.rule) for f in got] == [
        (7, 18, 24, "GL001"), (8, 21, 25, "GL003"), (10, 17, 27, "GL004")]


def test_an_argo_cd_write_back_file_is_linted_by_its_name():
    text = "kustomize:\n  images:\n  - team/app:latest\n  - x=team/api:main\n"
    assert findings(text, path="apps/.argocd-source-app.yaml") == [(3, 14, "GL001"), (4, 16, "GL003")]
    assert findings(text, path="apps/other.yaml") == []


def test_argo_cd_helm_parameters_are_linted_at_the_tag_parameter():
    text = (
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nspec:\n  source:\n    helm:\n      parameters:\n"
        "      - {name: image.name, value: team/app}\n"
        "      - {name: image.tag, value: latest}\n"
        "      - {name: api.image, value: 'team/api:main'}\n"
        "      - {name: ok.repository, value: team/ok}\n      - {name: ok.tag, value: 1.2.3}\n"
    )
    assert findings(text, path="app.yaml") == [(8, 34, "GL001"), (9, 34, "GL003")]


def test_a_flux_helmreleases_post_renderer_images_are_linted_as_kustomize_entries():
    text = (
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  postRenderers:\n  - kustomize:\n"
        "      images:\n      - name: team/app\n        newTag: latest\n"
        "      - name: team/web\n        newName: ghcr.io/acme/web\n"   # no newTag: the chart's tag stays
    )
    assert findings(text, path="release.yaml") == [(8, 17, "GL001")]


def test_kustomize_entry_whose_newtag_default_is_empty_keeps_the_base_tag():
    # `newTag: ${TAG:-}` (Flux postBuild substitution with TAG unset) is the empty tag, like `newTag: ''`:
    # kustomize keeps the base's tag, so no GL002 (the exemption looks at the expanded value)
    text = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n"
        "- name: web\n  newName: ghcr.io/acme/web\n  newTag: ${TAG:-}\n"
        "- name: db\n  newName: ghcr.io/acme/db\n  newTag: ${TAG-}\n  digest: ${DIGEST:-}\n"
        "- name: api\n  newName: ghcr.io/acme/api\n  newTag: ${TAG:-latest}\n"
        "- name: bad\n  newName: Acme/Bad\n  newTag: ${TAG:-}\n"
    )
    assert findings(text, path="kustomization.yaml") == [(13, 11, "GL001"), (15, 12, "GL004")]
    required = lint.config_from_settings({"require-digest": True})
    assert [(line, rule) for line, _, rule in findings(text, required, path="kustomization.yaml")] == [
        (13, "GL001"), (13, "GL005"), (15, "GL004")]


def test_corpus_tag_suffix_component_is_clean(monkeypatch):
    monkeypatch.chdir(CORPUS)
    rel = "GoogleCloudPlatform__microservices-demo/kustomize/components/container-images-tag-suffix/kustomization.yaml"
    assert lint.lint_paths([rel], DEFAULT).findings == []


def test_an_istio_hub_and_tag_map_with_an_empty_hub_is_no_reference(monkeypatch):
    # `hub: ""` / `tag: ""` inherit Istio's global hub and tag: the map names no image (no GL004 '' here)
    assert findings('x:\n  hub: ""\n  tag: "1.0"\nrepair: {hub: "", tag: ""}\n', path="values.yaml") == []
    assert findings("x:\n  hub: registry.istio.io/release\n  tag: latest\n", path="values.yaml") == [(3, 8, "GL001")]
    monkeypatch.chdir(CORPUS)
    report = lint.lint_paths(["istio__istio/manifests/charts/istio-cni/values.yaml"], DEFAULT)
    assert [(f.line, f.rule) for f in report.findings] == [(5, "GL002"), (163, "GL001")]


def test_helm_values_map_points_at_the_offending_field():
    text = (
        "image:\n  registry: docker.io\n  repository: bitnami/nginx\n  tag: latest\n"
        "sidecar:\n  image:\n    repository: ghcr.io/acme/sidecar\n    tag: \"\"\n"
        "other:\n  image:\n    repository: Acme/Other\n    tag: '1.0'\n"
        "pinned:\n  image:\n    repository: ghcr.io/acme/pinned\n    tag: main\n"
        f"    digest: {DIGEST}\n"
    )
    assert findings(text, path="values.yaml") == [
        (4, 8, "GL001"),    # at tag
        (8, 10, "GL002"),   # the empty tag is where the fix goes
        (11, 17, "GL004"),  # at the repository
    ]


def test_helm_empty_tag_is_judged_by_the_charts_app_version(tmp_path, monkeypatch):
    # the `helm create` scaffold: `tag: ""` renders `.Chart.AppVersion` (Chart.yaml beside values.yaml)
    values = ('image:\n  repository: ghcr.io/acme/api\n  tag: ""  # defaults to the appVersion\n'
              "worker:\n  image:\n    repository: ghcr.io/acme/worker\n    tag: ${WORKER_TAG:-}\n")
    charts = {"pinned": "appVersion: 1.10\n", "latest": 'appVersion: "latest"\n', "unset": "", "none": None,
              "bad": "appVersion: [\n"}
    for name, app_version in charts.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "values.yaml").write_text(values)
        if app_version is not None:
            (tmp_path / name / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: 0.1.0\n{app_version}")
    monkeypatch.chdir(tmp_path)

    def run(name: str, config: lint.LintConfig = DEFAULT) -> list[tuple[int, int, str, str, str | None]]:
        return [(f.line, f.column, f.rule, f.message, f.image)
                for f in lint.lint_paths([f"{name}/values.yaml"], config).findings]

    assert run("pinned") == []  # 1.10 as written, not the float 1.1
    pinned = run("pinned", lint.config_from_settings({"require-digest": True}))
    assert [(line, rule, image) for line, _, rule, _, image in pinned] == [
        (3, "GL005", "ghcr.io/acme/api:1.10"), (7, "GL005", "ghcr.io/acme/worker:1.10")]
    assert pinned[0][3].endswith("(the empty tag defaults to the chart's appVersion, pinned/Chart.yaml:4)")
    latest = run("latest")
    assert [(line, column, rule) for line, column, rule, _, _ in latest] == [(3, 8, "GL001"), (7, 10, "GL001")]
    assert latest[0][3] == ("image 'ghcr.io/acme/api:latest' uses the tag 'latest'; pin an immutable tag or a "
                            "digest (the empty tag defaults to the chart's appVersion, latest/Chart.yaml:4)")
    assert latest[1][3].endswith("(the empty tag defaults to the chart's appVersion, latest/Chart.yaml:4) (written "
                                 "'ghcr.io/acme/worker:${WORKER_TAG:-}', ${VAR:-default} defaults applied)")
    for name in ("unset", "bad"):  # a Chart.yaml without an appVersion (or unreadable): nothing to default to
        found = run(name)
        assert [(line, rule) for line, _, rule, _, _ in found] == [(3, "GL002"), (7, "GL002")]
        assert found[0][3] == (f"image 'ghcr.io/acme/api' has an empty tag, and {name}/Chart.yaml sets no "
                               "appVersion for it to default to; pin an immutable tag or a digest")
    found = run("none")  # a values file with no chart beside it: not known, still an error, and says why
    assert [(line, rule) for line, _, rule, _, _ in found] == [(3, "GL002"), (7, "GL002")]
    assert "has an empty tag, and no Chart.yaml beside this file gives the appVersion" in found[0][3]
    assert ":latest" not in found[0][3]
    # the allow list and suppressions see the image as the chart renders it, at the empty tag
    assert run("latest", lint.config_from_settings({"allow": ["ghcr.io/acme/*"]})) == []
    (tmp_path / "latest" / "values.yaml").write_text(values.replace('""  #', '""  # gitops-lint: ignore=GL001'))
    assert [rule for _, _, rule, _, _ in run("latest")] == ["GL001"]  # the worker's is not silenced


def test_helm_repository_without_tag_points_at_the_repository():
    text = "image:\n  registry: quay.io\n  repository: acme/app\n  pullPolicy: Always\n"
    assert findings(text, path="values.yaml") == [(3, 15, "GL002")]


# --- Dockerfiles -----------------------------------------------------------------------------------

def test_dockerfile_rules_and_positions():
    text = (
        "ARG BASE_TAG=latest\n"
        "ARG GO=1.22\n"
        "FROM golang:${GO} AS build\n"
        "FROM --platform=linux/amd64 alpine:${BASE_TAG}\n"
        "COPY --from=build /out /out\n"
        "COPY --from=busybox /bin/sh /sh\n"
        "FROM build\n"
        "FROM scratch\n"
        "FROM app:${UNSET}\n"
    )
    got = lint.lint_text("Dockerfile", text, DEFAULT)
    assert [(f.line, f.column, f.rule) for f in got] == [(4, 29, "GL001"), (6, 13, "GL002"), (9, 6, "GL006")]
    assert "alpine:${BASE_TAG}" in got[0].message and "ARG" in got[0].message
    assert got[0].image == "alpine:latest"


@pytest.mark.parametrize("value, want", [
    ("ghcr.io/acme/web:${TAG:-latest}", ["GL001"]),
    ("${DB_IMAGE:-postgres}", ["GL002"]),
    ("${DB_IMAGE-postgres:16.4}", []),
    ("app:${TAG:-main}", ["GL003"]),
    ("app:${TAG:-1.2.3}", []),
    ("${REG:-ghcr.io/acme}/app:${TAG:-${SHA}}", ["GL006"]),    # the default is itself unresolved
    ("${REG}/app:${TAG:-latest}", ["GL001", "GL006"]),       # known parts are still checked
    ("app:${TAG}", ["GL006"]),                               # no default: unresolved, tag unknown
    ("app${SUFFIX:+-dbg}:latest", ["GL001", "GL006"]),       # :+ is not expanded
    ("'app:$${TAG:-latest}'", ["GL006"]),                    # $$ escape: left alone
    ("${IMG:-Acme/App:1}", ["GL004"]),
])
def test_yaml_variable_defaults_are_applied(value, want):
    assert codes(value) == want


def test_yaml_variable_defaults_report_at_the_written_value():
    text = (
        "services:\n  web:\n    image: ghcr.io/acme/web:${TAG:-latest}\n"
        "  db:\n    image: \"${DB_IMAGE:-postgres}\"  # gitops-lint: ignore=GL002 compose default\n"
        "values:\n  image:\n    repository: ghcr.io/acme/v\n    tag: ${TAG:-main}\n"
    )
    got = lint.lint_text("compose.yaml", text, DEFAULT)
    assert [(f.line, f.column, f.end_column, f.rule) for f in got] == [
        (3, 12, 43, "GL001"), (9, 10, 22, "GL003")]
    assert got[0].image == "ghcr.io/acme/web:latest"
    assert "written 'ghcr.io/acme/web:${TAG:-latest}'" in got[0].message
    allow = lint.config_from_settings({"allow": ["ghcr.io/acme/web:*", "ghcr.io/acme/v:main"]})
    assert lint.lint_text("compose.yaml", text, allow) == []


def test_helm_map_fields_take_their_defaults_one_by_one():
    text = ("a:\n  image:\n    repository: ${REPO:-ghcr.io/acme/o}\n    tag: ${T:-}\n"
            "b:\n  image:\n    registry: ${REG:-ghcr.io}\n    repository: acme/o\n    tag: ${T:-1.2.3}\n"
            "c:\n  image:\n    repository: ${REPO:-ghcr.io/acme/o}\n    tag: ${T:-main}\n")
    got = lint.lint_text("values.yaml", text, DEFAULT)
    # an empty Helm tag is GL002 at the tag (README), not an invalid tag '' (GL004)
    assert [(f.line, f.column, f.rule, f.image) for f in got] == [
        (4, 10, "GL002", "ghcr.io/acme/o"), (13, 10, "GL003", "ghcr.io/acme/o:main")]
    assert "(written '${REPO:-ghcr.io/acme/o}:${T:-}', ${VAR:-default} defaults applied)" in got[0].message


def test_dockerfile_parse_error_is_gl000():
    (f,) = lint.lint_text("Dockerfile", "FROM a b\n", DEFAULT)
    assert (f.line, f.rule) == (1, "GL000")


def test_dockerfile_suppression_on_the_line_above():
    text = "# gitops-lint: ignore=GL002\nFROM busybox\nFROM nginx\n"
    assert findings(text, path="Dockerfile") == [(3, 6, "GL002")]


# --- GL000 -----------------------------------------------------------------------------------------

def test_yaml_syntax_error_is_gl000_with_line():
    text = "a: 1\nb: [1, 2\nc: 3\n"
    (f,) = lint.lint_text("bad.yaml", text, DEFAULT)
    assert f.rule == "GL000" and f.severity == "error" and f.line >= 2
    assert "does not parse" in f.message


def test_unreadable_files_are_gl000(tmp_path):
    (tmp_path / "latin1.yaml").write_bytes(b"image: caf\xe9\n")
    (tmp_path / "bin.yaml").write_bytes(b"\0\1\2")
    (tmp_path / "bom.yaml").write_bytes("\ufeffimage: nginx\n".encode())
    report = lint.lint_paths([str(tmp_path)], DEFAULT)
    got = sorted((Path(f.path).name, f.line, f.column, f.rule) for f in report.findings)
    assert got == [("bin.yaml", 1, 1, "GL000"), ("bom.yaml", 1, 8, "GL002"), ("latin1.yaml", 1, 11, "GL000")]


@pytest.mark.parametrize("data, line, column, byte", [
    (b"a: 1\nb: 2\nimage: caf\xe9:v1\n", 3, 11, 20),         # was 1:1 whatever the line
    ("a: 1\r\nb: 'd\u00e9j\u00e0'  # \u00e9t\u00e9\n".encode() + b"c: \xff\n", 3, 4, 30),
    ("k: '\u00e9\u20ac\U0001f600' ".encode() + b"\xc3(", 1, 10, 15),  # columns count characters
    ("\ufeffimage: ".encode() + b"\x80", 1, 8, 10),         # the BOM is not a column
    (b"\xfe", 1, 1, 0),
])
def test_not_utf8_gl000_names_the_line_and_column_of_the_bad_byte(tmp_path, data, line, column, byte):
    (tmp_path / "x.yaml").write_bytes(data)
    (f,) = lint.lint_paths([str(tmp_path / "x.yaml")], DEFAULT).findings
    assert (f.line, f.column, f.rule, f.message) == (line, column, "GL000", f"not UTF-8 text (byte {byte})")


# --- suppressions ----------------------------------------------------------------------------------

def test_suppression_trailing_and_line_above():
    text = (
        "a:\n  image: nginx:latest  # gitops-lint: ignore=GL001\n"
        "b:\n  # gitops-lint: ignore=GL003,GL001\n  image: app:main\n"
        "c:\n  image: app:dev  # gitops-lint: ignore=GL001\n"        # other rule: still reported
        "d:\n  # gitops-lint: ignore=GL002\n\n  image: redis\n"      # not directly above: reported
        "e:\n  image: redis  # gitops-lint: ignore = gl002\n"
    )
    assert findings(text) == [(7, 10, "GL003"), (11, 10, "GL002")]


def test_suppression_with_a_reason_after_the_codes():
    text = (
        "a:\n  image: busybox:latest  # gitops-lint: ignore=GL001 vendored upstream\n"
        "b:\n  # gitops-lint: ignore=GL001, GL003: tracked on purpose (JIRA-12)\n  image: app:main\n"
        "c:\n  image: app:dev  # gitops-lint: ignore=all -- scratch env\n"
        "d:\n  image: redis:latest  # gitops-lint: ignore=GL0012 typo: not a code\n"
        "e:\n  image: redis:latest  # gitops-lint: ignore=GL003 GL001 (only GL003; the rest is a reason)\n"
        "f:\n  image: redis  # gitops-lint: ignore = gl002,gl001 lower case\n"
    )
    assert findings(text) == [(9, 10, "GL001"), (11, 10, "GL001")]
    assert lint.suppressions("x  # gitops-lint: ignore=GL001,GL005 because\n") == {1: {"GL001", "GL005"}}


def test_suppression_on_the_helm_image_key_or_above_it():
    text = (
        "# gitops-lint: ignore=GL001\nimage:\n  repository: nginx\n  tag: latest\n"
        "sidecar:\n  image:  # gitops-lint: ignore=GL003 tracked branch\n"
        "    # a comment between\n    repository: ghcr.io/acme/sidecar\n    tag: main\n"
        "anchored:\n  image: &img  # gitops-lint: ignore=GL003\n    repository: ghcr.io/acme/a\n    tag: main\n"
        "flow:\n  # gitops-lint: ignore=GL001\n  image: {repository: ghcr.io/acme/f, tag: latest}\n"
        "other:\n  # gitops-lint: ignore=GL001\n  name: x\n  image:\n    repository: ghcr.io/acme/o\n"
        "    tag: latest\n"
        "list:\n  # gitops-lint: ignore=GL001\n  - repository: ghcr.io/acme/l\n    tag: latest\n"
    )
    # `other`: the comment is above a sibling key, not above `image:`; `list`: the comment is above the
    # entry's own first line, which already counted
    assert findings(text, path="values.yaml") == [(22, 10, "GL001")]

    text = (
        "images:\n"
        "- name: app  # gitops-lint: ignore=GL001\n  newTag: latest\n"
        "# gitops-lint: ignore=GL003\n- name: web\n  newTag: main\n"
        "- name: db\n  newTag: latest\n"
    )
    assert findings(text, path="kustomization.yaml") == [(8, 11, "GL001")]


# --- configuration ---------------------------------------------------------------------------------

def test_config_allow_globs_match_written_and_normalized_forms():
    allow = ["busybox:latest", "ghcr.io/acme/*", "docker.io/library/redis"]
    config = lint.config_from_settings({"allow": allow})
    assert codes("busybox:latest", config) == []
    assert codes("docker.io/library/busybox:latest", config) == []
    assert codes("ghcr.io/acme/tool:main", config) == []
    assert codes("redis", config) == []
    assert codes("nginx:latest", config) == ["GL001"]


def test_config_extra_mutable_tags_and_rule_levels():
    config = lint.config_from_settings(
        {"mutable-tags": ["qa"], "rules": {"GL003": "warning", "gl002": "off"}}, extra_mutable_tags=["uat"])
    got = lint.lint_text("p.yaml", "a: {image: 'app:QA'}\nb: {image: 'app:uat'}\nc: {image: nginx}\n", config)
    assert [(f.line, f.rule, f.severity) for f in got] == [(1, "GL003", "warning"), (2, "GL003", "warning")]


@pytest.mark.parametrize("table, text", [
    ({"alow": []}, "unknown key 'alow'"),
    ({"rules": {"GL009": "error"}}, "unknown rule"),
    ({"rules": {"GL001": "fatal"}}, "must be 'error', 'warning' or 'off'"),
    ({"allow": [1]}, "must be a list of strings"),
    ({"require-digest": "yes"}, "true or false"),
    ({"fail-level": "info"}, "'fail-level' must be one of error, warning, not 'info'"),
    ({"format": "xml"}, "'format' must be one of text, json, github, sarif, not 'xml'"),
])
def test_config_errors(table, text):
    with pytest.raises(ConfigError) as exc:
        lint.config_from_settings(table)
    assert text in exc.value.message and exc.value.exit_code == 2


def test_ignore_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for rel in ("apps/a.yaml", "vendor/x/b.yaml", "tests/c.yml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("image: nginx\n")
    config = lint.config_from_settings({"ignore-paths": ["vendor", "*/c.yml"]})
    assert lint.discover(["."], config.ignore_paths) == ["apps/a.yaml"]
    assert lint.discover(["vendor/x/b.yaml", "apps/a.yaml"], config.ignore_paths) == ["apps/a.yaml"]


@pytest.mark.parametrize("spelling", [
    "vendor", "./vendor", "vendor/", "./vendor/", ".//vendor", "apps/../vendor", "../{cwd}/vendor",
    "{abs}/vendor", "{abs}/vendor/", "{abs}/./vendor", "vendor/*", "./vendor/x/*.yaml", "{abs}/vendor/x/b.yaml",
    "{glob}/*/x",  # a glob: its fixed part escaped (glob.escape)
])
@pytest.mark.parametrize("cwd", ["app", "app[1]"])  # a glob character in the current directory's name
def test_ignore_paths_spellings_of_one_path(tmp_path, monkeypatch, spelling, cwd):
    # `./vendor` and absolute paths matched nothing, silently
    top = tmp_path / cwd
    monkeypatch.chdir(top.parent)
    for rel in ("apps/a.yaml", "vendor/x/b.yaml"):
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).write_text("image: nginx\n")
    monkeypatch.chdir(top)
    pattern = spelling.format(abs=top, cwd=cwd, glob=glob.escape(str(top)))
    for given in (["."], ["vendor/x/b.yaml", "apps/a.yaml"], [str(top)]):
        got = [os.path.relpath(p) for p in lint.discover(given, lint.config_from_settings(
            {"ignore-paths": [pattern]}).ignore_paths)]
        assert got == ["apps/a.yaml"], (pattern, given)


def test_ignore_paths_outside_the_current_directory(tmp_path, monkeypatch):
    for rel in ("here/a.yaml", "there/vendor/b.yaml", "there/c.yaml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("image: nginx\n")
    monkeypatch.chdir(tmp_path / "here")
    for pattern in ("../there/vendor", str(tmp_path / "there" / "vendor"), "../there/v*"):
        assert lint.discover([".", "../there"], [pattern]) == ["a.yaml", "../there/c.yaml"], pattern
    assert lint.discover([".", "../there"], ["vendor"]) == ["a.yaml", "../there/c.yaml", "../there/vendor/b.yaml"]


# --- discovery -------------------------------------------------------------------------------------

def test_fifo_is_skipped_in_a_walk_and_gl000_when_named(tmp_path):
    # reading a FIFO waits for a writer: before the fix both runs hung forever
    (tmp_path / "a.yaml").write_text("image: nginx\n")
    os.mkfifo(tmp_path / "pipe.yaml")
    os.mkfifo(tmp_path / "Dockerfile")
    assert [os.path.basename(p) for p in lint.discover([str(tmp_path)])] == ["a.yaml"]
    code = ("import sys\nfrom gitops_cli import lint\n"
            "r = lint.lint_paths(sys.argv[1:], lint.config_from_settings({}))\n"
            "print([(f.path.rsplit('/', 1)[-1], f.rule, f.message) for f in r.findings])\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(tmp_path / "pipe.yaml")],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == str([("a.yaml", "GL002", "image 'nginx' has no tag, so it means :latest; pin an "
                                "immutable tag or a digest"), ("pipe.yaml", "GL000", "not a regular file (a FIFO)")])


def test_discover_patterns_symlinks_git_and_helm_templates(tmp_path):
    files = [
        "a.yaml", "b.yml", "Dockerfile", "Dockerfile.prod", "api.Dockerfile", "Containerfile",
        "sub/deep/c.yaml", ".git/config.yaml", "README.md", "Dockerfile.dockerignore",
        "chart/Chart.yaml", "chart/values.yaml", "chart/templates/deploy.yaml", "other/templates/t.yaml",
    ]
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x: 1\n")
    os.symlink(tmp_path / "a.yaml", tmp_path / "link.yaml")
    os.symlink(tmp_path / "sub", tmp_path / "linkdir")
    got = [os.path.relpath(p, tmp_path) for p in lint.discover([str(tmp_path)])]
    assert got == [
        "Containerfile", "Dockerfile", "Dockerfile.prod", "a.yaml", "api.Dockerfile", "b.yml",
        "chart/Chart.yaml", "chart/values.yaml", "other/templates/t.yaml", "sub/deep/c.yaml",
    ]


def test_discover_missing_path_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="/nope: no such file or directory$"):
        lint.discover([str(tmp_path / "nope")])
    with pytest.raises(UsageError, match=r"^an empty PATH argument: give a file or directory"):  # was ": no such ..."
        lint.discover([""])


def test_paths_are_shown_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.yaml").write_text("image: nginx\n")
    assert [f.path for f in lint.lint_paths([], DEFAULT).findings] == ["d/x.yaml"]
    assert [f.path for f in lint.lint_paths(["d/"], DEFAULT).findings] == ["d/x.yaml"]
    assert [f.path for f in lint.lint_paths(["./d/x.yaml"], DEFAULT).findings] == ["./d/x.yaml"]


# --- formatters ------------------------------------------------------------------------------------

def _report() -> lint.Report:
    text = "a:\n  image: nginx:latest\nb:\n  image: ${IMG}\n"
    return lint.Report(lint.lint_text("dir, x/p%1.yaml", text, DEFAULT), files=3)


def test_text_format_and_summary():
    report = _report()
    assert lint.format_text(report).splitlines() == [
        "dir, x/p%1.yaml:2:10: GL001 image 'nginx:latest' uses the tag 'latest'; "
        "pin an immutable tag or a digest",
        "dir, x/p%1.yaml:4:10: GL006 image '${IMG}' has an unresolved placeholder ${IMG}; "
        "the linted file is not what gets deployed (warning)",
    ]
    assert lint.summary(report) == "gitops lint: 1 error, 1 warning in 1 of 3 files"
    assert lint.summary(lint.Report([], 1)) == "gitops lint: no findings in 1 file"
    assert report.failed("error") and report.failed("warning")
    warn_only = lint.Report([f for f in report.findings if f.severity == "warning"], 1)
    assert not warn_only.failed("error") and warn_only.failed("warning")


def test_json_format():
    data = json.loads(lint.format_json(_report()))
    assert data["summary"] == {"files": 3, "errors": 1, "warnings": 1}
    first = data["findings"][0]
    assert first | {"message": ""} == {
        "path": "dir, x/p%1.yaml", "line": 2, "column": 10, "end_line": 2, "end_column": 22, "rule": "GL001",
        "name": "latest", "severity": "error", "message": "", "image": "nginx:latest",
    }


def test_github_format_escapes_properties_and_data():
    lines = lint.format_github(_report()).splitlines()
    assert lines[0] == (
        "::error file=dir%2C x/p%251.yaml,line=2,col=10,endColumn=22,title=GL001 latest::"
        "image 'nginx:latest' uses the tag 'latest'; pin an immutable tag or a digest"
    )
    assert lines[1].startswith("::warning file=dir%2C x/p%251.yaml,line=4,col=10,")


def test_control_characters_in_file_names_are_escaped_in_text_and_github_formats():
    # the text format split such a finding over two lines with a raw ESC; github encoded the line break
    # but left the ESC raw
    name = "d/e\x1b[31mred\nx\ty\u2028.yaml"
    report = lint.Report(lint.lint_text(name, "image: nginx:latest\n", DEFAULT), files=1)
    shown = "d/e\\x1b[31mred\\nx\\ty\\u2028.yaml"
    assert lint.format_text(report) == (
        f"{shown}:1:8: GL001 image 'nginx:latest' uses the tag 'latest'; pin an immutable tag or a digest\n")
    assert lint.format_github(report) == (
        f"::error file={shown},line=1,col=8,endColumn=20,title=GL001 latest::image 'nginx:latest' uses the "
        "tag 'latest'; pin an immutable tag or a digest\n")
    # JSON and SARIF carry the name exactly (JSON escapes, a URI percent-encodes)
    assert json.loads(lint.format_json(report))["findings"][0]["path"] == name
    sarif = json.loads(lint.format_sarif(report))
    assert sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "d/e%1B%5B31mred%0Ax%09y%E2%80%A8.yaml")


def test_a_file_name_that_is_not_utf8_is_its_bytes_in_the_sarif_uri():
    """A byte that is not UTF-8 (a lone surrogate, surrogateescape) crashed the SARIF format (urllib's
    quote encodes strictly): the URI percent-encodes the name's bytes, as the file system has them."""
    for name, uri in (("d/bad\udcff.yaml", "d/bad%FF.yaml"), ("\udcc3\udcbc.yaml", "%C3%BC.yaml"),
                      ("/abs/bad\udcff.yaml", "file:///abs/bad%FF.yaml")):
        report = lint.Report(lint.lint_text(name, "image: nginx:latest\n", DEFAULT), files=1)
        sarif = json.loads(lint.format_sarif(report))
        assert sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == uri


@pytest.mark.integration
@pytest.mark.parametrize("locale", [{"LANG": "C.UTF-8"}, {"LC_ALL": "C", "PYTHONUTF8": "0"}])
def test_cli_every_format_takes_file_names_that_are_not_utf8(gitops, tmp_path, locale):
    """A name that is not UTF-8, and a non-ASCII one read under an ASCII locale: every format works (the
    SARIF one failed whole, exit 70), the SARIF URI has the name's bytes."""
    (tmp_path / os.fsdecode(b"bad\xff.yaml")).write_text("image: nginx:latest\n")
    (tmp_path / "\u00fc.yaml").write_text("image: nginx:latest\n")
    env = {"LANG": "", "LC_ALL": "", **locale}
    for fmt in lint.FORMATS:
        r = gitops(["lint", "--format", fmt, "."], cwd=tmp_path, env=env)
        assert r.returncode == 1 and "2 errors" in r.stderr, (fmt, r.stderr)
    r = gitops(["lint", "--format", "sarif", "."], cwd=tmp_path, env=env)
    uris = {res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for res in json.loads(r.stdout)["runs"][0]["results"]}
    assert uris == {"bad%FF.yaml", "%C3%BC.yaml"}


@pytest.mark.integration
def test_cli_text_output_keeps_a_control_character_file_name_on_one_line(gitops, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "e\x1b[31mred\nx.yaml").write_text("image: nginx:latest\n")
    r = gitops(["lint", "d"], cwd=tmp_path)
    assert r.returncode == 1
    assert r.stdout.splitlines() == ["d/e\\x1b[31mred\\nx.yaml:1:8: GL001 image 'nginx:latest' uses the tag "
                                     "'latest'; pin an immutable tag or a digest"]
    r = gitops(["lint", "--format", "github", "d"], cwd=tmp_path)
    assert r.stdout.startswith("::error file=d/e\\x1b[31mred\\nx.yaml,line=1,") and "\x1b" not in r.stdout


def test_sarif_format():
    sarif = json.loads(lint.format_sarif(_report(), "1.2.3"))
    assert sarif["version"] == "2.1.0" and "sarif-2.1.0" in sarif["$schema"]
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(lint.RULES) and run["tool"]["driver"]["version"] == "1.2.3"
    first, second = run["results"]
    assert rules[first["ruleIndex"]]["id"] == first["ruleId"] == "GL001"
    assert first["level"] == "error" and second["level"] == "warning"
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "dir%2C%20x/p%251.yaml"
    assert location["region"] == {"startLine": 2, "startColumn": 10, "endLine": 2, "endColumn": 22}


# --- the shared real-world corpus ------------------------------------------------------------------

from tests.fixtures.corpus import CORPUS  # noqa: E402


def _untagged_or_latest(value: str) -> bool:
    name, _, digest = value.partition("@")
    last = name.rsplit("/", 1)[-1]
    return not digest and (":" not in last or last.rsplit(":", 1)[1].lower() == "latest")


def test_corpus_lints_without_crash_and_reports_every_untagged_or_latest_container(monkeypatch):
    assert (CORPUS / "index.json").is_file(), "the shared corpus is missing"
    index = json.loads((CORPUS / "index.json").read_text())
    monkeypatch.chdir(CORPUS)
    report = lint.lint_paths(["."], DEFAULT)
    assert report.files == index["summary"]["files"]
    at = {}
    for f in report.findings:
        at.setdefault((f.path, f.line, f.column), set()).add(f.rule)

    expected = [r for r in index["refs"] if r["kind"] == "container" and _untagged_or_latest(r["value"])]
    assert len(expected) > 50
    missing = []
    for ref in expected:
        rules = at.get((ref["file"], ref["line"], ref["column"]), set())
        value = ref["value"]
        if lint.imageref.placeholders(value):
            want = "GL006"
        elif lint.imageref.try_parse(value) is None:
            want = "GL004"
        else:
            want = "GL002" if ":" not in value.rsplit("/", 1)[-1] else "GL001"
        if want not in rules:
            missing.append((ref["file"], ref["line"], value, sorted(rules)))
    assert missing == []
    # every unparseable file is reported as GL000, on the line PyYAML names
    gl000 = {(f.path, f.line) for f in report.findings if f.rule == "GL000"}
    assert gl000 == {(u["file"], u["line"]) for u in index["unparseable"]}


# --- the command -----------------------------------------------------------------------------------

@pytest.mark.integration
def test_cli_exit_codes_streams_and_formats(gitops, tmp_path):
    (tmp_path / "good.yaml").write_text("spec:\n  containers:\n  - image: nginx:1.27\n")
    assert (r := gitops(["lint"], cwd=tmp_path)).returncode == 0, r.stderr
    assert r.stdout == "" and "no findings in 1 file" in r.stderr

    (tmp_path / "bad.yaml").write_text("spec:\n  containers:\n  - image: nginx\n  - image: ${X}\n")
    r = gitops(["lint"], cwd=tmp_path)
    assert r.returncode == 1
    assert r.stdout.splitlines()[0].startswith("bad.yaml:3:12: GL002 ")
    assert "1 error, 1 warning in 1 of 2 files" in r.stderr

    r = gitops(["lint", "bad.yaml"], cwd=tmp_path, env={"GITHUB_ACTIONS": "true"})
    assert r.stdout.startswith("::error file=bad.yaml,line=3,col=12,")
    r = gitops(["lint", "--format", "sarif", "bad.yaml"], cwd=tmp_path, env={"GITHUB_ACTIONS": "true"})
    assert json.loads(r.stdout)["version"] == "2.1.0"
    assert json.loads(gitops(["lint", "--format", "json"], cwd=tmp_path).stdout)["summary"]["errors"] == 1

    (tmp_path / "bad.yaml").write_text("spec:\n  containers:\n  - image: ${X}\n")
    assert gitops(["lint"], cwd=tmp_path).returncode == 0          # warnings do not fail by default
    assert gitops(["lint", "--fail-level", "warning"], cwd=tmp_path).returncode == 1
    assert gitops(["lint", "--require-digest", "good.yaml"], cwd=tmp_path).returncode == 1

    for args in (["--format", "xml"], ["--fail-level", "info"], ["missing.yaml"], ["--bogus"]):
        r = gitops(["lint", *args], cwd=tmp_path)
        assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr, args


@pytest.mark.integration
def test_cli_compose_defaults_fifos_and_suppression_reasons(gitops, tmp_path):
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    image: ghcr.io/acme/web:${TAG:-latest}\n"
        "  db:\n    image: ${DB_IMAGE:-postgres}\n"
        "  tools:\n    image: busybox:latest  # gitops-lint: ignore=GL001 vendored upstream\n"
    )
    os.mkfifo(tmp_path / "pipe.yaml")
    r = gitops(["lint"], cwd=tmp_path, timeout=60)               # the walk skips the FIFO
    assert r.returncode == 1, r.stderr
    assert r.stdout.splitlines() == [
        "compose.yaml:3:12: GL001 image 'ghcr.io/acme/web:latest' uses the tag 'latest'; pin an immutable tag "
        "or a digest (written 'ghcr.io/acme/web:${TAG:-latest}', ${VAR:-default} defaults applied)",
        "compose.yaml:5:12: GL002 image 'postgres' has no tag, so it means :latest; pin an immutable tag or a "
        "digest (written '${DB_IMAGE:-postgres}', ${VAR:-default} defaults applied)",
    ]
    assert "2 errors, 0 warnings in 1 of 1 file" in r.stderr
    r = gitops(["lint", "pipe.yaml"], cwd=tmp_path, timeout=60)  # named: GL000, not a hang
    assert (r.returncode, r.stdout) == (1, "pipe.yaml:1:1: GL000 not a regular file (a FIFO)\n")


@pytest.mark.integration
def test_cli_reads_tool_gitops_lint_config(gitops, tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.gitops.lint]\nallow = ["nginx:latest"]\nmutable-tags = ["qa"]\nignore-paths = ["vendor"]\n'
        '[tool.gitops.lint.rules]\nGL002 = "warning"\n'
    )
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "x.yaml").write_text("image: app:main\n")
    (tmp_path / "a.yaml").write_text("a:\n  image: nginx:latest\nb:\n  image: redis\nc:\n  image: app:QA\n")
    r = gitops(["lint"], cwd=tmp_path)
    assert r.returncode == 1
    assert [line.split(": ", 2)[1].split()[0] for line in r.stdout.splitlines()] == ["GL002", "GL003"]
    assert "(warning)" in r.stdout.splitlines()[0]

    (tmp_path / "pyproject.toml").write_text('[tool.gitops.lint]\nrules = { GL001 = "fatal" }\n')
    r = gitops(["lint"], cwd=tmp_path)
    assert r.returncode == 2 and "pyproject.toml" in r.stderr and "GL001" in r.stderr

    # format/fail-level from the file: they win over the GitHub Actions default, flags win over them
    (tmp_path / "pyproject.toml").write_text('[tool.gitops.lint]\nformat = "json"\nfail-level = "warning"\n')
    (tmp_path / "a.yaml").write_text("a:\n  image: ${X}\n")
    r = gitops(["lint", "a.yaml"], cwd=tmp_path, env={"GITHUB_ACTIONS": "true"})
    assert r.returncode == 1 and json.loads(r.stdout)["summary"]["warnings"] == 1
    r = gitops(["lint", "a.yaml", "--format", "text", "--fail-level", "error"], cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("a.yaml:2:10: GL006")
    (tmp_path / "pyproject.toml").write_text('[tool.gitops.lint]\nfail-level = "info"\n')
    r = gitops(["lint", "a.yaml"], cwd=tmp_path)
    assert r.returncode == 2 and "pyproject.toml" in r.stderr and "'fail-level' must be one of" in r.stderr


def test_cli_takes_a_file_named_like_an_option_as_a_path(gitops, tmp_path):
    """pre-commit's argv: the hook's args, then the staged files, no `--` between."""
    (tmp_path / "-x.yaml").write_text("image: nginx:latest\n")
    (tmp_path / "-h.yaml").write_text("image: app:main\n")  # -h is lint's help: a file of that name is not
    (tmp_path / "b.yaml").write_text("image: redis:7.2\n")
    r = gitops(["lint", "--require-digest", "-x.yaml", "--format=text", "-h.yaml", "b.yaml"], cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert [[line.split(": ")[0], line.split(": ")[1].split()[0]] for line in r.stdout.splitlines()] == [
        ["-x.yaml:1:8", "GL001"], ["-x.yaml:1:8", "GL005"], ["-h.yaml:1:8", "GL003"], ["-h.yaml:1:8", "GL005"],
        ["b.yaml:1:8", "GL005"]]
    r = gitops(["lint", "--requre-digest", "-x.yaml"], cwd=tmp_path)  # a misspelled option stays an error
    assert r.returncode == 2 and "No such option: --requre-digest" in r.stderr and r.stdout == ""
    r = gitops(["lint", "-y.yaml"], cwd=tmp_path)  # no such file: the parser's error, as before
    assert r.returncode == 2 and "No such option: -y" in r.stderr
    assert gitops(["lint", "--help"]).stdout.startswith("Usage: gitops lint [OPTIONS] [PATH]...\n")


@pytest.mark.integration
@pytest.mark.parametrize("name, content, table", [
    ("gitops.toml", '[lint]\nalow = ["x"]\n', "[lint]"),              # said [tool.gitops.lint]
    ("gitops.toml", 'lint = { alow = ["x"] }\n', "[lint]"),
    ("gitops.toml", '[tool.gitops.lint]\nalow = ["x"]\n', "[tool.gitops.lint]"),
    ("pyproject.toml", '[tool.gitops.lint]\nalow = ["x"]\n', "[tool.gitops.lint]"),
])
def test_cli_config_error_names_the_table_as_written(gitops, tmp_path, name, content, table):
    (tmp_path / name).write_text(content)
    r = gitops(["lint"], cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines()[0] == f"error: {tmp_path / name} {table}: unknown key 'alow'"


def test_lint_path_imports_neither_docker_nor_gitpython(tmp_path):
    # nor pydantic: typer 0.29 coerces every option through a pydantic TypeAdapter (~75 ms a start,
    # paid on every pre-commit run), which is why pyproject pins typer below 0.29
    (tmp_path / "a.yaml").write_text("image: nginx:latest\n")
    (tmp_path / "Dockerfile").write_text("FROM alpine:3.20\n")
    code = (
        "import sys\n"
        "from gitops_cli import cli\n"
        "try:\n    cli.main(['lint', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('docker', 'git', 'rich', 'pydantic'))\n"
        "print('HEAVY', heavy)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DEBUG"}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                         env=env, check=True).stdout
    assert "GL001" in out
    assert out.splitlines()[-1] == "HEAVY []"


# --- which files: lint's walk, and the pre-commit hook's filter -----------------------------------------------
NAMES = {  # name: linted (by `gitops lint DIR` and by the hook)
    "a.yaml": True, "dir/b.yml": True, "app/Kustomization": True, "Kustomization": True,
    "Dockerfile": True, "Dockerfile-dev": True, "Dockerfile_dev": True, "Dockerfile.prod": True,
    "sub/web.Dockerfile": True, "web.Containerfile": True, "x.Dockerfile.prod": True, "api.Containerfile.ci": True,
    "Containerfile": True, "Containerfile.web": True, "a.dockerfile": True, "a.containerfile": True,
    "dockerfile": True, "containerfile": True,
    "Dockerfile.dockerignore": False, ".dockerignore": False, "README.md": False, "kustomization": False,
    "XKustomization": False, "a.json": False, "Makefile": False, "notes.yaml.txt": False, "dockerfile.md": False,
    # documentation, templates, backups of Dockerfiles are none; a YAML file is YAML whatever its other parts
    "docs/build.Dockerfile.md": False, "ci.Dockerfile.j2": False, "Dockerfile.j2": False, "Dockerfile.orig": False,
    "app.Dockerfile.yaml": True, "Dockerfile~": False, "Dockerfile.MD": False,
}


def test_a_walk_takes_kustomizations_and_every_dockerfile_name(tmp_path: Path, monkeypatch) -> None:
    """`Kustomization` (kustomize's third name) was never linted, and `web.Containerfile` or
    `x.Dockerfile.prod` (pre-commit's type dockerfile) were skipped by a walk and read as YAML when named."""
    for name in NAMES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("FROM node:latest\n" if lint.is_dockerfile(name) else "image: node:latest\n")
    assert not lint.is_dockerfile("app.Dockerfile.yaml") and lint.is_yaml_name("app.Dockerfile.yaml")
    monkeypatch.chdir(tmp_path)
    assert sorted(lint.discover(["."])) == sorted(n for n, linted in NAMES.items() if linted)
    findings = lint.lint_text("web.Containerfile", 'FROM python:latest\nRUN echo "a: b"\n', lint.LintConfig())
    assert [(f.rule, f.line) for f in findings] == [("GL001", 1)]  # a Dockerfile: no YAML parse error
    # a file given by name is read whatever its name: a template is the Dockerfile it mostly is, YAML is YAML
    findings = lint.lint_text("Dockerfile.j2", "FROM alpine:latest\nRUN echo {{ x }}\n", lint.LintConfig())
    assert [(f.rule, f.line) for f in findings] == [("GL001", 1)]
    assert lint.lint_text("app.Dockerfile.yaml", "image: nginx:1.25\n", lint.LintConfig()) == []


def test_the_pre_commit_hook_passes_the_files_a_walk_takes(tmp_path: Path, monkeypatch) -> None:
    """The hook's filter (pre-commit's own code: its files regex, then its types) passes exactly what
    `gitops lint DIR` lints: `types_or: [yaml, dockerfile]` left out `Kustomization`, `Dockerfile-dev` and
    `Dockerfile_dev`, which identify gives no type."""
    from pre_commit.commands.run import Classifier, filter_by_include_exclude
    from ruamel.yaml import YAML

    [hook] = YAML(typ="safe").load((Path(__file__).parent.parent / ".pre-commit-hooks.yaml").read_text())
    for name in NAMES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x\n")
    (tmp_path / "link.yaml").symlink_to("a.yaml")  # not a regular file: neither lints it
    monkeypatch.chdir(tmp_path)
    names = [*NAMES, "link.yaml"]
    included = filter_by_include_exclude(names, hook.get("files", ""), hook.get("exclude", "^$"))
    passed = Classifier(names).by_types(included, hook.get("types", ["file"]), hook.get("types_or", []),
                                        hook.get("exclude_types", []))
    assert sorted(passed) == sorted(n for n, linted in NAMES.items() if linted)
