"""yamledit.splice: form-keeping, byte-exact updates, verified by re-parsing."""

from __future__ import annotations

import pytest

from gitops_cli.errors import VerificationError
from gitops_cli.imageref import parse
from gitops_cli.yamledit import Edit, YamlSyntaxError, apply_edits, locate, update_images
from gitops_cli.yamledit import splice as splice_module

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def bump(text: str, *images: str, **kw) -> tuple[str, list]:
    return update_images(text, [parse(i) for i in images], filename="f.yaml", **kw)


def pod(image: str, name: str = "app") -> str:
    return f"spec:\n  containers:\n  - name: {name}\n    image: {image}\n"


def test_apply_edits_rejects_overlaps():
    assert apply_edits("abcdef", [Edit(4, 5, "E"), Edit(0, 1, "A")]) == "AbcdEf"
    with pytest.raises(ValueError):
        apply_edits("abcdef", [Edit(0, 3, "x"), Edit(2, 4, "y")])
    with pytest.raises(ValueError):
        apply_edits("abc", [Edit(1, 1, "x"), Edit(1, 1, "y")])


@pytest.mark.parametrize(("before", "after"), [
    ("team/app:1.0", "team/app:2.0"),                       # tag only
    (f"team/app:1.0@{D1}", f"team/app:2.0@{D2}"),           # tag and digest
    (f"team/app@{D1}", f"team/app@{D2}"),                   # digest only
    ("team/app", "team/app:2.0"),                           # bare name
    ("docker.io/team/app:1", "docker.io/team/app:2.0"),     # the name stays as written
    ("index.docker.io/team/app:1", "index.docker.io/team/app:2.0"),
])
def test_each_form_is_kept(before, after):
    new, changes = bump(pod(before), f"team/app:2.0@{D2}")
    assert new == pod(after)
    assert [(c.line, c.column, c.old, c.new, c.kind, c.field) for c in changes] == [
        (4, 12, before, after, "container", None)]


@pytest.mark.parametrize(("written", "target", "matches"), [
    ("team/app-worker:1", "team/app:2", False),
    ("team/app2:1", "team/app:2", False),
    ("ghcr.io/team/app:1", "team/app:2", False),
    ("docker.io/library/nginx:1", "nginx:2", True),
    ("nginx:1", "docker.io/library/nginx:2", True),
    ("index.docker.io/x/y:1", "x/y:2", True),
    ("localhost:5000/app:1", "localhost:5001/app:2", False),
    ("localhost:5000/app", "localhost:5000/app:2", True),
])
def test_repository_equality_only(written, target, matches):
    new, changes = bump(pod(written), target)
    assert bool(changes) is matches
    assert (new != pod(written)) is matches


def test_quote_styles_comments_crlf_bom_and_missing_final_newline_are_kept():
    text = ("\ufeffspec:   \r\n  containers:\r\n  - name: a\r\n    image: 'team/app:1'   # keep me\r\n"
            "  - {name: b, image: \"team/app:1\"}\r\n\r\n  - name: c\r\n    image: team/app  ")
    new, changes = bump(text, "team/app:1.2.3")
    assert new == text.replace("team/app:1'", "team/app:1.2.3'").replace('team/app:1"', 'team/app:1.2.3"') \
        .replace("image: team/app  ", "image: team/app:1.2.3  ")
    assert len(changes) == 3


def test_plain_flow_value_gets_a_colon_quoted_only_where_it_had_none():
    text = "spec:\n  containers: [{name: a, image: team/app}]\n"
    new, _ = bump(text, "team/app:2")
    assert new == 'spec:\n  containers: [{name: a, image: "team/app:2"}]\n'  # libyaml would refuse it plain


@pytest.mark.parametrize("parser", ["default", "python"])
def test_plain_flow_value_with_a_colon_stays_plain(parser, monkeypatch):
    if parser == "python":
        monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    text = ("spec:\n  containers:\n  - {name: b, image: team/app:v1}  # flow\n"
            "  - {name: c, image: 'team/app:v1'}\n  - [x, {name: d, image: \"team/app:v1\"}]\n"
            "  args: [a:b, {x: \"y\"}, http://x]\n")
    new, changes = bump(text, "team/app:v2")
    assert new == text.replace("team/app:v1", "team/app:v2")  # quotes kept, plain kept
    assert [(c.line, c.column) for c in changes] == [(3, 22), (4, 22), (5, 26)]


@pytest.mark.parametrize("parser", ["default", "python"])
def test_tabs_between_tokens_are_kept_and_read_alike_by_either_parser(parser, monkeypatch):
    if parser == "python":
        monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    text = ("spec:\n  containers: [{name: a, image: team/app:v1}]\t# libyaml refuses this line\n"
            "  initContainers:\n  - name:\tb\n    image:\t'team/app:v1'\t# c\n  restartPolicy: Always\t\n"
            "image:\n  repository: team/app\n  tag: v1\t# c\n")
    new, changes = bump(text, "team/app:v2")
    assert new == text.replace("team/app:v1", "team/app:v2").replace("tag: v1", "tag: v2")
    assert [(c.line, c.column) for c in changes] == [(2, 33), (5, 12), (9, 8)]


@pytest.mark.parametrize(("value", "flow", "colon", "plain"), [
    ("team/app:v2", False, False, True),
    ("team/app:v2", True, True, True),
    ("team/app:v2", True, False, False),
    ("a,b", True, True, False),
    ("a]", True, True, False),
    ("a{b", True, True, False),
    ("a: b", True, True, False),
    ("a #b", False, False, False),
    ("a,b]", False, False, True),   # only flow context ends a plain scalar at , [ ] { }
    ("1.10", False, False, False),
])
def test_plain_is_kept_exactly_when_it_reads_back(value, flow, colon, plain):
    text, style = splice_module.render(value, "plain", flow, colon)
    assert (style == "plain") is plain
    assert text == (value if plain else f'"{value}"')


def test_block_scalars_args_annotations_untouched():
    text = """\
metadata:
  annotations:
    image: team/app:1
spec:
  containers:
  - name: a
    image: team/app:1
    args: ["team/app:1", "image: team/app:1"]
    command:
    - |
      image: team/app:1
"""
    new, changes = bump(text, "team/app:2")
    assert len(changes) == 1
    assert new == text.replace("    image: team/app:1\n    args", "    image: team/app:2\n    args")


def test_container_restriction():
    text = pod("team/app:1", "web") + "  - name: worker\n    image: team/app:1\n"
    new, changes = bump(text, "team/app:2", container="worker")
    assert new == pod("team/app:1", "web") + "  - name: worker\n    image: team/app:2\n"
    assert [c.line for c in changes] == [6]


def test_anchored_scalar_is_edited_once():
    text = pod("&i team/app:1", "a") + "  initContainers:\n  - name: b\n    image: *i\n"
    new, changes = bump(text, "team/app:2")
    assert new == text.replace("&i team/app:1", "&i team/app:2") and len(changes) == 1
    with pytest.raises(VerificationError, match=r"f.yaml:4: 'team/app:1' is also the image of container 'b' "
                       r"\(they share it through the alias \*i on line 7\), which --container a excludes"):
        bump(text, "team/app:2", container="a")


@pytest.mark.parametrize(("text", "match"), [
    ("a: &x team/app:v1\nimage: *x\n", r"f.yaml:1: 'team/app:v1' comes from the anchor &x \(written as \*x on "
                                         r"line 2\), which is set on `a` on line 1, not an image"),
    (pod("&x team/app:v1") + "    env:\n    - name: IMAGE\n      value: *x\n",
     r"f.yaml:4: .* anchor &x, which is also used by `value` on line 7"),
    ("metadata:\n  annotations:\n    image: &x team/app:v1\n" + pod("*x"),
     "f.yaml:3: .* set on `image` on line 3, not an image"),  # an annotation is not a located image
])
def test_an_anchor_shared_with_a_value_that_is_not_an_image_is_refused(text, match):
    with pytest.raises(VerificationError, match=match) as exc:
        bump(text, "team/app:v2")
    assert exc.value.hint and "alias" in exc.value.hint


def test_an_anchor_on_a_compose_extension_field_is_bumped():
    text = "x-image: &img team/app:1\nservices:\n  a:\n    image: *img\n  b:\n    image: *img\n"
    new, changes = bump(text, "team/app:2")
    assert new == text.replace("team/app:1", "team/app:2") and len(changes) == 1


COMPOSE_TEMPLATE = """\
x-app: &app
  image: team/app:1
  restart: always
services:
  web:
    <<: *app
  own:
    image: team/app:1
"""


def test_a_compose_template_merged_into_the_selected_service_only_is_bumped_with_container():
    """`x-app: &app {image: ...}` merged into web only: it is web's image, and --container web bumps it."""
    new, changes = bump(COMPOSE_TEMPLATE, "team/app:2", container="web")
    assert new == COMPOSE_TEMPLATE.replace("  image: team/app:1\n  restart", "  image: team/app:2\n  restart")
    assert [(c.line, c.kind) for c in changes] == [(2, "compose")]
    new, _ = bump(COMPOSE_TEMPLATE, "team/app:2", container="own")  # not web's: the template stays
    assert new == COMPOSE_TEMPLATE.replace("    image: team/app:1\n", "    image: team/app:2\n")
    aliased = "x-app: &app\n  image: team/app:1\nservices:\n  web: *app\n"
    assert bump(aliased, "team/app:2", container="web")[0] == aliased.replace(":1", ":2")


@pytest.mark.parametrize(("text", "container", "match"), [
    (COMPOSE_TEMPLATE + "  worker:\n    <<: *app\n", "web",
     r"f.yaml:2: 'team/app:1' is also the image of service 'worker' \(they share it through the merge key "
     r"`<<: \*app` on line 10\), which --container web excludes"),
    ("spec:\n  containers:\n  - &c\n    name: a\n    image: team/app:1\n  - <<: *c\n    name: b\n", "a",
     r"f.yaml:5: 'team/app:1' is also the image of container 'b' \(they share it through the merge key `<<: \*c` "
     r"on line 6\), which --container a excludes"),
], ids=["compose-template", "kubernetes-container"])
def test_a_value_merged_into_a_service_or_container_that_container_excludes_is_refused(text, container, match):
    with pytest.raises(VerificationError, match=match) as exc:
        bump(text, "team/app:2", container=container)
    assert exc.value.hint and "merge key" in exc.value.hint


@pytest.mark.parametrize("crlf", [False, True])
def test_one_line_block_scalars_are_bumped_in_place(crlf):
    text = ("spec:\n  containers:\n  - name: a\n    image: >-   # folded\n      team/app:v1\n\n"
            "  - name: b\n    image: &i |-\n      team/app:v1\n  initContainers:\n  - name: c\n    image: *i\n")
    if crlf:
        text = text.replace("\n", "\r\n")
    new, changes = bump(text, "team/app:v2")
    assert new == text.replace("team/app:v1", "team/app:v2")
    assert [(c.line, c.column, c.old, c.new) for c in changes] == [
        (5, 7, "team/app:v1", "team/app:v2"), (9, 7, "team/app:v1", "team/app:v2")]


def test_block_scalar_that_is_no_image_reference_is_left_alone():
    text = pod("|\n      team/app:v1")  # clip: 'team/app:v1\n' (Kubernetes refuses the line break)
    assert bump(text, "team/app:v2") == (text, [])


def test_too_deeply_nested_file_is_not_half_searched():
    text = "image: team/app:1\n" + "".join("  " * i + f"k{i}:\n" for i in range(450)) + "  " * 450 \
        + "image: team/app:1\n"
    with pytest.raises(YamlSyntaxError, match="nested more than 400 levels deep") as exc:
        bump(text, "team/app:2")
    assert exc.value.line == 403


def test_kustomize_insert_newtag_block_and_flow_with_crlf():
    text = ("kind: Kustomization\r\nimages:\r\n- name: team/app # ours\r\n  newName: reg.io/team/app\r\n"
            "- {name: other, newName: team/app}\r\n- name: nginx\r\n  newTag: 1.0\r\n")
    new, changes = bump(text, "reg.io/team/app:1.10", "team/app:v2", "nginx:1.10")
    assert new == ("kind: Kustomization\r\nimages:\r\n- name: team/app # ours\r\n"
                   '  newName: reg.io/team/app\r\n  newTag: "1.10"\r\n'
                   "- {name: other, newName: team/app, newTag: v2}\r\n- name: nginx\r\n"
                   '  newTag: "1.10"\r\n')
    assert [(c.field, c.old, c.new) for c in changes] == [
        ("newTag", "", "1.10"), ("newTag", "", "v2"), ("newTag", "1.0", "1.10")]


@pytest.mark.parametrize(("text", "at", "ending"), [
    # the entry's last line ends with LF, the file's first one with CRLF: the new line ends with LF
    ("images:\r\n- name: team/app\n  newName: reg.io/team/app\n", "reg.io/team/app", "\n"),
    ("images:\n- name: team/app\r\n  newName: reg.io/team/app\r\nx: 1\n", "reg.io/team/app", "\r\n"),
    # no final line break: the new line follows the one before it, which gets that line's ending
    ("images:\n- name: team/app\r\n  newName: reg.io/team/app", "reg.io/team/app", "\r\n"),
    # a CR alone (old Mac files) is a line break too
    ("images:\r- name: team/app\r  newName: reg.io/team/app\rx: 1\r", "reg.io/team/app", "\r"),
    ("images:\r- name: team/app\r  newName: reg.io/team/app\r  x:\r  - |\r    a\r", "    a", "\r"),
])
def test_an_added_line_ends_as_the_line_it_follows_and_no_other_line_ending_changes(text, at, ending):
    new, changes = update_images(text, [parse("reg.io/team/app:v2")], filename="kustomization.yaml")
    cut = text.rindex(at) + len(at)
    if cut == len(text):
        assert new == text + ending + "  newTag: v2"
    else:
        assert new == text[:cut] + ending + "  newTag: v2" + text[cut:]
        assert text[cut:].startswith(ending)  # the line it follows keeps its own ending
    assert [(c.line, c.field, c.new) for c in changes] == [(2, "newTag", "v2")]


def test_a_file_with_cr_line_breaks_alone_is_bumped_and_its_lines_counted():
    text = "kind: Pod\rspec:\r  containers:\r  - name: a\r    image: >-\r      team/app:1\r  - name: b\r" \
           "    image: team/app:1\r"
    new, changes = bump(text, "team/app:2")
    assert new == text.replace("team/app:1", "team/app:2")
    assert [(c.line, c.column) for c in changes] == [(6, 7), (8, 12)]


def test_kustomize_digest_and_tag_forms():
    head = "kind: Kustomization\nimages:\n"
    text = head + f"- name: a/b\n  digest: {D1}\n- name: c/d\n  newTag: x\n  digest: {D1}\n"
    new, _ = bump(text, f"a/b:2@{D2}", f"c/d:3@{D2}")
    assert new == head + f'- name: a/b\n  digest: {D2}\n- name: c/d\n  newTag: "3"\n  digest: {D2}\n'


def test_helm_maps():
    text = f"""\
image:
  registry: docker.io
  repository: bitnami/nginx
  tag: ""   # set by CI
  digest: ""
worker:
  image:
    repository: team/worker
    tag:
pinned:
  repository: team/pinned
  tag: 1.0.0
  digest: {D1}
combined:
  registry: registry.k8s.io
  image: team/combined
  tag: v1@{D1}
"""
    new, changes = bump(text, "bitnami/nginx:1.25", "team/worker:w2", f"team/pinned:2.0.0@{D2}",
                        f"registry.k8s.io/team/combined:v2@{D2}")
    assert new == text.replace('tag: ""', 'tag: "1.25"').replace("    tag:\n", "    tag: w2\n") \
        .replace("tag: 1.0.0", "tag: 2.0.0").replace(f"digest: {D1}", f"digest: {D2}").replace(
            f"tag: v1@{D1}", f"tag: v2@{D2}")
    assert {c.field for c in changes} == {"tag", "digest"}


def test_helm_map_without_tag_field_gets_one():
    text = "image:\n  registry: ghcr.io\n  repository: team/app\n  pullPolicy: IfNotPresent\nother: 1\n"
    new, _ = bump(text, "ghcr.io/team/app:7")
    assert new == text.replace("IfNotPresent\n", 'IfNotPresent\n  tag: "7"\n')


HELM_NESTED_LAST = "image:\n  registry: r.example.com\n  repository: team/app\n"


@pytest.mark.parametrize("parser", ["default", "python"])
@pytest.mark.parametrize(("last", "after"), [
    ("  pullSecrets:\n    - name: regcred\n", ""),                       # a block sequence last
    ("  pullSecrets:\n  - name: regcred\n", "other: 1\n"),               # an indentless one
    ("  extra:\n    a:\n      b: [c]\n", "# comment\n\nother: 1\n"),     # a block mapping in a mapping
    ("  pullSecrets:\n    - - a\n      - b\n", "---\nx: 1\n"),           # sequences in a sequence
    ("  pullSecrets:\n    - name: regcred", ""),                          # no final newline
])
def test_a_tag_line_is_added_after_a_nested_block_that_ends_the_map(parser, last, after, monkeypatch):
    """The new line goes after the nested block, before what follows the map: the verifier expects the
    nested block to end at the new key now (a block collection ends at the next token)."""
    if parser == "python":
        monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    text = HELM_NESTED_LAST + last + after
    new, changes = bump(text, "r.example.com/team/app:2")
    eol = "\n" if last.endswith("\n") else ""
    assert new == HELM_NESTED_LAST + last + ("" if eol else "\n") + '  tag: "2"' + eol + after
    assert [(c.line, c.field, c.old, c.new) for c in changes] == [(2, "tag", "", "2")]


def test_a_tag_is_added_to_a_flow_map_whose_last_value_is_a_nested_collection():
    text = ("image: {registry: r.example.com,\n  repository: team/app,\n  pullSecrets: [\n    {name: a},\n  ]\n}\n"
            "x: {repository: team/app, tag: '1', extra: {a: [b]}}\n")
    new, _ = bump(text, "r.example.com/team/app:2")
    assert new == text.replace("  ]\n}", '  ], tag: "2"\n}')


def test_a_newtag_line_is_added_after_a_nested_block_that_ends_the_entry():
    text = ("images:\n- name: team/app\n  newName: r.example.com/team/app\n  x:\n    y:\n    - 1\n"
            "- name: nginx\n  newTag: '1'\n")
    new, _ = update_images(text, [parse("r.example.com/team/app:v2")], filename="kustomization.yaml")
    assert new == text.replace("- 1\n", "- 1\n  newTag: v2\n")


@pytest.mark.parametrize("parser", ["default", "python"])
@pytest.mark.parametrize(("last", "after"), [  # after: the text after the map's first two lines; T the new line
    ("  note: |\n    hello", "T\n  note: |\n    hello"),
    ("  note: >\n    hello", "T\n  note: >\n    hello"),
    ("  note: |+\n    hello", "T\n  note: |+\n    hello"),
    ("  note: |2\n    hello\n      ", "T\n  note: |2\n    hello\n      "),  # its last line: content too
    ("  extra:\n    - |\n      hello", "T\n  extra:\n    - |\n      hello"),  # nested in the last value
    ("  note: |-\n    hello", "  note: |-\n    hello\nT"),  # strip: no final line break either way
    ("  note: |\n    hello\n  ", "  note: |\n    hello\nT\n  "),  # clip: it has its final line break
    ("  note: |", "  note: |\nT"),  # a header alone: no content, no line break to add
])
@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_a_tag_line_goes_before_a_last_block_scalar_that_a_line_after_would_change(parser, last, after, eol,
                                                                                    monkeypatch):
    """At the end of a file with no final line break, a `|` / `>` block scalar ('hello') would gain one
    ('hello\\n') if a line followed it: the new field goes before the map's last key then, every value kept."""
    if parser == "python":
        monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    text = (HELM_NESTED_LAST + last).replace("\n", eol)
    new, changes = bump(text, "r.example.com/team/app:2")
    assert new == (HELM_NESTED_LAST + after.replace("T", '  tag: "2"')).replace("\n", eol)
    assert [(c.line, c.field, c.old, c.new) for c in changes] == [(2, "tag", "", "2")]
    kustomize = "images:\n- name: team/app\n  newName: r.example.com/team/app\n"
    new, _ = update_images(kustomize + last, [parse("r.example.com/team/app:v2")], filename="kustomization.yaml")
    assert new == kustomize + after.replace("T", "  newTag: v2")


def test_a_tag_line_goes_before_a_merge_key_that_ends_the_map():
    """The new line follows the map's last own field: a `<<` merge key written after it stays after it."""
    text = "base: &b\n  pullPolicy: Always\nimage:\n  registry: r.io\n  repository: team/app\n  <<: *b\nx: 1\n"
    new, _ = bump(text, "r.io/team/app:2")
    assert new == text.replace("team/app\n", 'team/app\n  tag: "2"\n')
    flow = "base: &b {pullPolicy: Always}\nimage: {registry: r.io, repository: team/app, <<: *b}\n"
    assert bump(flow, "r.io/team/app:2")[0] == flow.replace("team/app,", 'team/app, tag: "2",')


@pytest.mark.parametrize("tag", ["1.10", "20240101", "1e3", "true", "yes", "2024-01-15", "0x1f", "null",
                                 "1_000"])
def test_yaml_typing_is_respected(tag):
    text = "image:\n  repository: team/app\n  tag: v1\n"
    new, _ = bump(text, f"team/app:{tag}")
    assert new == f'image:\n  repository: team/app\n  tag: "{tag}"\n'


@pytest.mark.parametrize("tag", ["on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N", "yes", "No"])
def test_a_tag_that_yaml_1_1_reads_as_a_boolean_is_quoted_in_a_helm_values_file(tag):
    """kubectl, Helm and PyYAML read YAML 1.1, where `on`, `off`, `y`, `n`... are booleans: `tag: on` would
    deploy the tag `true`, or fail to render."""
    import yaml  # PyYAML: a YAML 1.1 reader, as Helm's and kubectl's are

    text = "image:\n  repository: team/app\n  tag: v1\n  pullPolicy: IfNotPresent\n"
    new, _ = update_images(text, [parse(f"team/app:{tag}")], filename="charts/app/values.yaml")
    assert new == text.replace("tag: v1", f'tag: "{tag}"')
    assert yaml.safe_load(new)["image"]["tag"] == tag


def test_safe_tags_stay_plain():
    new, _ = bump("image:\n  repository: team/app\n  tag: v1\n", "team/app:1.2.3-alpine")
    assert new.endswith("tag: 1.2.3-alpine\n")


def test_digest_needed_but_missing():
    text = pod(f"team/app:1@{D1}")
    with pytest.raises(VerificationError, match="f.yaml:4"):
        bump(text, "team/app:2")
    calls = []

    def resolver(target, ref):
        calls.append((str(target), ref.line))
        return D2

    text2 = text + f"  - name: b\n    image: team/app@{D1}\n"
    new, _ = bump(text2, "team/app:2", resolve_digest=resolver)
    assert new == pod(f"team/app:2@{D2}") + f"  - name: b\n    image: team/app@{D2}\n"
    assert calls == [("team/app:2", 4)]  # resolved once


def test_target_with_digest_only_pins_by_digest():
    new, _ = bump(pod("team/app:1"), f"team/app@{D2}")
    assert new == pod(f"team/app@{D2}")


def test_already_up_to_date_and_no_match_return_identical_text():
    text = pod("team/app:2")
    assert bump(text, "team/app:2") == (text, [])
    assert bump(text, "team/other:2") == (text, [])


def test_shared_helm_tag_through_merge_key_is_refused():
    text = "defaults: &d\n  tag: '1'\na:\n  <<: *d\n  repository: team/a\n" \
        "b:\n  <<: *d\n  repository: team/b\n"
    with pytest.raises(VerificationError, match="merge key shared with other entries"):
        bump(text, "team/a:2")


HELM_SHARED = 'image:\n  repository: team/app\n  tag: &ver "1.0"\nappVersion: *ver\nenv:\n  VERSION: *ver\n'
KUSTOMIZE_SHARED = ("kind: Kustomization\nimages:\n- name: team/app\n  newTag: &v v1\n"
                    "labels:\n- pairs:\n    app.kubernetes.io/version: *v\n")


@pytest.mark.parametrize(("text", "image", "match"), [
    (HELM_SHARED, "team/app:2.0", r"f.yaml:3: the tag of 'team/app:1.0' comes from the anchor &ver, which is also "
                                  r"used by `appVersion` on line 4, not an image; bumping it would change that too"),
    (KUSTOMIZE_SHARED, "team/app:v2", r"f.yaml:4: the newTag of 'team/app:v1' comes from the anchor &v, which is "
                                      r"also used by `app.kubernetes.io/version` on line 7, not an image"),
    (f"image:\n  repository: team/app\n  tag: v1\n  digest: &d {D1}\nchecksum: *d\n", f"team/app:v1@{D2}",
     r"f.yaml:4: the digest of .* &d, which is also used by `checksum` on line 5"),
    ('version: &v "1.0"\nimage:\n  repository: team/app\n  tag: *v\n', "team/app:2",
     r"f.yaml:1: the tag of 'team/app:1.0' comes from the anchor &v \(written as \*v on line 4\), which is set on "
     r"`version` on line 1, not an image"),
    ('a:\n  repository: team/a\n  tag: &v "1"\nb:\n  repository: team/b\n  tag: *v\n', "team/a:2",
     r"f.yaml:3: the tag of 'team/a:1' .* which is also used by the `tag` of 'team/b:1' on line 6"),
], ids=["helm-appVersion", "kustomize-label", "digest", "alias-of-another-value", "tag-of-another-image"])
def test_an_anchored_map_field_also_used_by_another_value_is_refused(text, image, match):
    """A Helm `tag:` / kustomize `newTag:` (or digest) whose anchor another value uses: bumping it would change
    that value too (appVersion, a label): refused, naming the file and line, as for an `image:` string."""
    with pytest.raises(VerificationError, match=match) as exc:
        bump(text, image)
    assert exc.value.hint and "alias" in exc.value.hint


def test_an_anchored_map_field_used_only_by_the_same_field_of_the_same_image_is_bumped_once():
    text = ('a:\n  repository: team/app\n  tag: &v "1"\nb:\n  repository: team/app\n  tag: *v\n---\n'
            "kind: Kustomization\nimages:\n- name: x\n  newName: team/app\n  newTag: &t '1'\n"
            "- name: y\n  newName: team/app\n  newTag: *t\n")
    new, changes = bump(text, "team/app:2")
    assert new == text.replace('&v "1"', '&v "2"').replace("&t '1'", "&t '2'") and len(changes) == 2
    anchored_name = "image:\n  repository: &r team/app\n  tag: v1\nname: *r\n"  # a name is never changed
    assert bump(anchored_name, "team/app:v2")[0] == anchored_name.replace("v1", "v2")


@pytest.mark.parametrize(("first", "second", "image"), [
    ("repository: team/app", "repository: docker.io/team/app", "team/app:2"),
    ("repository: nginx", "repository: index.docker.io/library/nginx", "docker.io/library/nginx:2"),
    ("repository: docker.io/team/app", "registry: index.docker.io\n  repository: team/app", "team/app:2"),
], ids=["docker.io", "library", "registry-field"])
def test_a_map_field_anchor_shared_by_spellings_of_the_same_image_is_bumped_once(first, second, image):
    """The same image is the same after normalisation, as the bump matches it: `team/app` and
    `docker.io/team/app` sharing a tag anchor both get the new tag, as they would without the alias."""
    def values(worker: str) -> str:
        worker = worker.replace("\n", "\n  ")
        return f'web:\n  image:\n    {first}\n    tag: &ver "1.0"\nworker:\n  image:\n    {worker}\n    tag: *ver\n'

    text = values(second)
    new, changes = bump(text, image)
    assert new == text.replace('&ver "1.0"', '&ver "2"') and len(changes) == 1
    with pytest.raises(VerificationError, match="also used by the `tag` of 'team/other:1.0'"):
        bump(values("repository: team/other"), image)  # another image: still refused


def test_verification_catches_a_wrong_edit(monkeypatch):
    monkeypatch.setattr(splice_module, "render", lambda value, style, *a: (value + ": x", style))
    with pytest.raises(VerificationError, match="f.yaml"):
        bump(pod("team/app:1"), "team/app:2")


@pytest.mark.parametrize("misrender", [
    lambda value, style, *a: (f"'{value}'", style),    # quoted, though planned plain: another event style
    lambda value, style, *a: (f"&a {value}", style),  # an anchor nobody planned
], ids=["style", "anchor"])
def test_verification_catches_an_edit_that_parses_but_reads_back_otherwise(monkeypatch, misrender):
    """The new text parses and its image reads back as intended, but one of its parser events is not the
    planned one: refused, nothing written."""
    monkeypatch.setattr(splice_module, "render", misrender)
    with pytest.raises(VerificationError, match=r"f.yaml: re-reading the edited file does not give the intended "
                                                r"values \(event \d+: expected .*team/app:2"):
        bump(pod("team/app:1"), "team/app:2")


def test_verification_catches_a_reference_that_reads_back_otherwise(monkeypatch):
    """Every event is the planned one, but the reference located in the new text is not the intended image
    (a locator that reads the edited text otherwise than the planner expects): refused, nothing written."""
    from dataclasses import replace

    real = splice_module.locate_parsed  # the re-reading of the edited text, and only that

    def misread(parsed, filename=None):
        return [replace(r, value=r.value.replace("team/app", "team/other")) for r in real(parsed, filename)]

    monkeypatch.setattr(splice_module, "locate_parsed", misread)
    with pytest.raises(VerificationError, match=r"f.yaml:4: 'team/app:1' reads back as 'team/other:2', "
                                                r"expected 'team/app:2'; nothing written"):
        bump(pod("team/app:1"), "team/app:2")


ESCAPED = [  # `image:` values spelled with escapes or continued lines, each reading `team/app:1`
    r'"team\x2fapp:1"', r'"team/app\x3a1"', r'"team/app\u003a1"', r'"team\/app:1"', '"team/\\\n      app:1"',
    r'"team/\x61pp:1"', '"team/ap\\\n      p:1"',
]


@pytest.mark.parametrize("value", ESCAPED)
def test_a_reference_spelled_with_escapes_is_bumped_not_hidden_by_the_prefilter(value):
    text = pod(value, "web")  # (a container named `app` would make the pre-filter look further)
    assert [r.value for r in locate(text).references] == ["team/app:1"]
    assert splice_module.mentions(text, [parse("team/app:2")])
    new, changes = bump(text, "team/app:2")
    assert [(c.line, c.old, c.new) for c in changes] == [(4, "team/app:1", "team/app:2")]
    assert [r.value for r in locate(new).references] == ["team/app:2"]


def test_the_prefilter_skips_ordinary_files_and_parses_any_with_a_backslash_after_a_quote():
    targets = [parse("team/app:2")]
    assert not splice_module.mentions(pod("team/app-worker:1", "web") + "  labels: {app: x}\n", targets)
    assert not splice_module.mentions(pod("team/other:1", "web") + "  path: C:\\dir\n", targets)  # no quote before
    assert splice_module.mentions(pod("team/other:1", "web") + '  args: ["--sep=\\t"]\n', targets)  # may escape


@pytest.mark.parametrize(("before", "after"), [
    # the changing end is written as itself: only it is replaced, escapes and continued lines stay
    ('"docker.io/team/\\\n      app:1"', '"docker.io/team/\\\n      app:2"'),
    ('"docker.io\\x2fteam/app:1"', '"docker.io\\x2fteam/app:2"'),
    ('"team/app\\x3a1"', '"team/app\\x3a2"'),
    ('&a !!str "team\\/app:1"', '&a !!str "team\\/app:2"'),
    ('"team/ap\\x70"', '"team/ap\\x70:2"'),                                     # a bare name: the tag added
    (f'"team\\x2fapp:1@{D1}"', f'"team\\x2fapp:2@{D2}"'),
    (f'"team\\x2fapp@{D1}"', f'"team\\x2fapp@{D2}"'),
    ('"team\\x2fapp:1.0"', '"team\\x2fapp:1.1"'),                             # from the first change on
    ('"team/app:\\x31.0"', '"team/app:\\x31.1"'),
    # a character that changes is an escape, or the changing end is broken across lines: the whole value
    ('"team/app:\\x31"', '"team/app:2"'),
    ('"team\\x2fapp:1.\\\n      0"', '"team/app:2"'),
    ('"team\\x2fapp:1\n      "', None),  # (not an image: `team/app:1 `)
])
def test_a_double_quoted_value_keeps_its_escapes_unless_the_changing_part_has_some(before, after):
    target = f"team/app:1.1@{D2}" if "1.0" in before else f"team/app:2@{D2}"
    new, changes = bump(pod(before, "web"), target)
    assert new == pod(after if after is not None else before, "web")
    assert len(changes) == (after is not None)


def test_double_quoted_map_fields_keep_their_escapes_unless_the_changing_part_has_some():
    helm = 'image:\n  repository: "team\\x2fapp"\n  tag: "1\\x2e0"\n  digest: "sha256:\\x31' + "1" * 63 + '"\n'
    new, _ = bump(helm, f"team/app:1.1@{D2}")
    assert new == f'image:\n  repository: "team\\x2fapp"\n  tag: "1\\x2e1"\n  digest: "{D2}"\n'
    kustomization = 'images:\n- name: "team\\x2fapp"\n  newTag: "v\\x31"  # v1\n- name: team/b\n  newTag: "b\\x2e1"\n'
    new, _ = update_images(kustomization, [parse("team/app:v2"), parse("team/b:b.2")], filename="kustomization.yaml")
    assert new == 'images:\n- name: "team\\x2fapp"\n  newTag: "v2"  # v1\n- name: team/b\n  newTag: "b\\x2e2"\n'


def test_select_leaves_the_references_it_does_not_select():
    """rollback's selector: only the references at the value rolled back from are changed."""
    text = pod("team/app:v3") + "  - name: side\n    image: team/app:v1\n"
    seen = []

    def at_v3(ref) -> bool:
        seen.append(ref.value)
        return ref.value.endswith(":v3")

    new, changes = bump(text, "team/app:v2", select=at_v3)
    assert new == pod("team/app:v2") + "  - name: side\n    image: team/app:v1\n"
    assert [c.new for c in changes] == ["team/app:v2"] and sorted(seen) == ["team/app:v1", "team/app:v3"]
    # nothing selected: nothing changed; and pending agrees (the file is up to date as far as the bump goes)
    assert bump(text, "team/app:v2", select=lambda ref: False) == (text, [])
    assert splice_module.pending(text, locate(text).references, [parse("team/app:v2")], select=lambda ref: False) == []
    kustomization = f"images:\n- name: team/app\n  newTag: v3\n  digest: {D1}\n"
    assert bump(kustomization, f"team/app:v2@{D2}", select=lambda ref: False) == (kustomization, [])


# --- Argo CD Application: kustomize image-override strings ------------------------------------------------------

def application(*images: str) -> str:
    items = "".join(f"      - {i}\n" for i in images)
    return f"apiVersion: argoproj.io/v1alpha1\nkind: Application\nspec:\n  source:\n    kustomize:\n" \
           f"      images:\n{items}"


@pytest.mark.parametrize(("before", "after"), [
    ("team/app:1.0", "team/app:2.0"),
    ("team/app:1.0   # pinned", "team/app:2.0   # pinned"),
    ('"team/app:1.0"', '"team/app:2.0"'),
    ("'x=team/app:1.0'", "'x=team/app:2.0'"),
    ("x=team/app", "x=team/app:2.0"),                             # a tag is added
    ("x=docker.io/team/app:1", "x=docker.io/team/app:2.0"),       # the name stays as written
    (f"team/app@{D1}", f"team/app@{D2}"),                         # digest only
    (f"x=team/app:1@{D1}", f"x=team/app:2.0@{D2}"),
    (">-\n        team/app:1.0", ">-\n        team/app:2.0"),      # a one-line block scalar
    ('"team/app\\x3a1.0"', '"team/app\\x3a2.0"'),                 # escapes before the changed characters stay
    ('"team/app:\\x31.0"', '"team/app:2.0"'),                     # one among them: rewritten whole
])
def test_application_override_strings_keep_their_form(before, after):
    new, changes = bump(application(before), f"team/app:2.0@{D2}")
    assert new == application(after)
    assert [(c.line, c.kind, c.field) for c in changes] == [(7 + before.startswith(">"), "kustomize", None)]
    assert bump(new, f"team/app:2.0@{D2}") == (new, [])


def test_application_override_strings_match_the_new_name_and_leave_the_rest():
    text = application("team/app=registry.local/app:1", "app:1", "team/app-worker:1", "team/app:v1 # x") + \
        "  sources:\n  - kustomize: {images: [team/app:1, 'y=team/app:1']}\n"
    new, changes = bump(text, "team/app:2")
    assert new == text.replace("team/app:v1 #", "team/app:2 #").replace("[team/app:1, 'y=team/app:1']",
                                                                       "[team/app:2, 'y=team/app:2']")
    assert len(changes) == 3
    new, _ = bump(text, "registry.local/app:3")
    assert new == text.replace("registry.local/app:1", "registry.local/app:3")


def test_an_override_string_whose_anchor_something_else_uses_is_refused():
    text = application("&v team/app:1") + "metadata:\n  annotations: {note: *v}\n"
    with pytest.raises(VerificationError, match="anchor &v"):
        bump(text, "team/app:2")


def test_an_argo_cd_write_back_file_is_bumped_by_its_name():
    text = "kustomize:\n  images:\n  - team/app=registry.local/team/app:v7 # by the updater\n"
    assert bump(text, "registry.local/team/app:v8") == (text, [])  # f.yaml: not such a file
    new, changes = update_images(text, [parse("registry.local/team/app:v8")], filename="a/.argocd-source-a.yaml")
    assert new == text.replace(":v7 ", ":v8 ") and [(c.line, c.column) for c in changes] == [(3, 5)]


# --- Argo CD Helm parameters ----------------------------------------------------------------------------------------

def helm_application(parameters: str) -> str:
    return f"apiVersion: argoproj.io/v1alpha1\nkind: Application\nspec:\n  source:\n    helm:\n      parameters:\n" \
           f"{parameters}"


@pytest.mark.parametrize(("before", "after"), [
    ("      - name: image.name\n        value: team/app\n      - name: image.tag\n        value: v1  # CI\n",
     "      - name: image.name\n        value: team/app\n      - name: image.tag\n        value: \"2\"  # CI\n"),
    ("      - {name: image.tag, value: '1.0'}\n      - {name: image.name, value: team/app}\n",
     "      - {name: image.tag, value: '2'}\n      - {name: image.name, value: team/app}\n"),
    ("      - name: image.repository\n        value: team/app\n      - name: image.tag\n        value: 1.0\n",
     "      - name: image.repository\n        value: team/app\n      - name: image.tag\n        value: \"2\"\n"),
    (f"      - {{name: a.image, value: team/app}}\n      - {{name: a.tag, value: 'v1@{D1}'}}\n",
     f"      - {{name: a.image, value: team/app}}\n      - {{name: a.tag, value: '2@{D2}'}}\n"),
    (f"      - {{name: a.repository, value: team/app}}\n      - {{name: a.digest, value: '{D1}'}}\n",
     f"      - {{name: a.repository, value: team/app}}\n      - {{name: a.digest, value: '{D2}'}}\n"),
    ("      - name: app.image\n        value: docker.io/team/app:1\n",
     "      - name: app.image\n        value: docker.io/team/app:2\n"),
])
def test_application_helm_parameters_change_only_the_tag_or_digest(before, after):
    new, changes = bump(helm_application(before), f"team/app:2@{D2}")
    assert new == helm_application(after)
    assert changes and {c.kind for c in changes} <= {"helm", "image"}
    assert bump(new, f"team/app:2@{D2}") == (new, [])


def test_helm_parameters_that_do_not_pair_are_left_alone():
    text = helm_application(
        "      - {name: image.name, value: team/app}\n"        # no tag parameter in this list
        "      - {name: service.name, value: team/app}\n      - {name: service.tag, value: v1}\n"
        "      - {name: bare.image, value: team/app}\n"        # a name alone
        "      - {name: x.tag, value: v1}\n"
    )
    assert bump(text, "team/app:2") == (text, [])


def test_a_helm_parameter_value_whose_anchor_something_else_uses_is_refused():
    text = helm_application("      - {name: image.name, value: team/app}\n"
                            "      - {name: image.tag, value: &v v1}\n") + "metadata:\n  labels: {version: *v}\n"
    with pytest.raises(VerificationError, match="image.tag of 'team/app:v1' comes from the anchor &v"):
        bump(text, "team/app:2")


def test_a_flux_helmreleases_post_renderer_images_entry_is_bumped_like_a_kustomization_entry():
    text = ("apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  postRenderers:\n  - kustomize:\n"
            "      images:\n      - name: team/app\n        newName: registry.local/team/app   # env\n"
            "      - {name: team/side, newTag: '1'}\n")
    new, changes = bump(text, "registry.local/team/app:v2", "team/side:2")
    assert new == text.replace("   # env\n", "   # env\n        newTag: v2\n").replace("newTag: '1'", "newTag: '2'")
    assert [(c.line, c.field) for c in changes] == [(7, "newTag"), (9, "newTag")]


SUFFIXED = "resources: [../base]\nimages:\n- name: team/app\n  tagSuffix: -debug\n"


def test_a_kustomize_entry_with_a_tag_suffix_and_no_tag_of_its_own_is_left_as_it_is():
    """kustomize appends a tagSuffix to the tag its resources give the image only while the entry sets no newTag
    or digest (api/filters/imagetag/updater.go): adding one would drop the suffix.  With a newTag or digest of
    its own the suffix never applied, and the entry is bumped as any other."""
    from gitops_cli.yamledit import kept

    assert bump(SUFFIXED, "team/app:v2") == (SUFFIXED, [])
    (entry,) = locate(SUFFIXED, filename="kustomization.yaml").references
    held = kept(entry)
    assert held is not None and (held.why, held.detail, held.line, str(held.image)) == (
        "tagSuffix", "-debug", 4, "team/app")
    renamed = SUFFIXED.replace("tagSuffix", "newName: team/other\n  tagSuffix")
    assert bump(renamed, "team/other:v2") == (renamed, [])
    empty = SUFFIXED + "  newTag: ''\n"  # an empty newTag is none: kustomize still appends the suffix
    assert bump(empty, "team/app:v2") == (empty, [])
    tagged = SUFFIXED + "  newTag: v1\n"
    assert bump(tagged, "team/app:v2")[0] == tagged.replace("newTag: v1", "newTag: v2")
    pinned = SUFFIXED + f"  digest: {D1}\n"
    assert bump(pinned, f"team/app:v2@{D2}")[0] == pinned.replace(D1, D2)


@pytest.mark.parametrize(("text", "line", "part", "placeholder"), [
    ("images:\n- name: team/app\n  newTag: ${APP_VERSION}\n", 3, "tag", "${APP_VERSION}"),  # Flux postBuild
    ('image:\n  repository: team/app\n  tag: "{{ .Chart.AppVersion }}"\n', 3, "tag", "{{ .Chart.AppVersion }}"),
    ("image:\n  repository: team/app\n  tag: v1\n  digest: ${DIGEST}\n", 4, "digest", "${DIGEST}"),
    ("images:\n- name: team/app\n  newTag: v1-${SUFFIX}\n  digest: sha256:x\n", 3, "tag", "${SUFFIX}"),
    (pod("team/app:${APP_VERSION}"), 4, "tag", "${APP_VERSION}"),
    (pod('"team/app:{{ .Values.tag }}"'), 4, "tag", "{{ .Values.tag }}"),
    (pod("team/app:${TAG:-v1}"), 4, "tag", "${TAG:-v1}"),
    (pod("team/app@${DIGEST}"), 4, "digest", "${DIGEST}"),
    (pod("team/app:<TAG>"), 4, "tag", "<TAG>"),
])
def test_a_placeholder_is_never_overwritten_wherever_it_is(text, line, part, placeholder):
    """One rule for every form: a tag or digest holding a placeholder (lint's GL006: the one definition,
    imageref.PLACEHOLDER_RE) is left as it is, and named (line, part) for the bump's warning."""
    from gitops_cli.yamledit import kept_references

    target = parse("team/app:v2")
    assert update_images(text, [target], filename="f.yaml") == (text, [])
    (held, to), = kept_references(locate(text, filename="kustomization.yaml").references, [target])
    assert (held.why, held.line, held.part, held.detail, to) == ("placeholder", line, part, placeholder, target)
    assert kept_references(locate(text).references, [parse("team/other:v2")]) == []


def test_a_placeholder_in_the_name_names_no_image_and_other_references_are_still_bumped():
    from gitops_cli.yamledit import kept_references

    text = pod("${REGISTRY}/team/app:v1") + "---\n" + pod("team/app:${V}") + "---\n" + pod("team/app:v1")
    new, changes = bump(text, "team/app:v2")
    assert new == text[:text.rindex("team/app:v1")] + "team/app:v2\n" and len(changes) == 1
    assert [(k.line, k.detail) for k, _ in kept_references(locate(text).references, [parse("team/app:v2")])] == [
        (9, "${V}")]
    # --container: a container it leaves out is not named either
    assert kept_references(locate(text).references, [parse("team/app:v2")], container="other") == []


def _shift_by_scan(pos: int, edits: list[Edit], after_insertions: bool) -> int:
    """The verifier's offset shift as it was computed before the table: a pass over every edit per offset."""
    delta = 0
    for e in edits:
        if e.end < pos or (e.end == pos and (e.start < e.end or after_insertions)):
            delta += len(e.text) - (e.end - e.start)
    return pos + delta


def test_the_offset_shift_table_gives_what_a_pass_over_every_edit_gives():
    """_Shift (two binary searches per offset) against the per-edit scan, on random non-overlapping edits:
    replacements and insertions, longer and shorter, ending at the offset asked or near it."""
    import random

    rng = random.Random(20261128)
    for _ in range(300):
        edits, pos = [], 0
        for _ in range(rng.randrange(0, 12)):
            start = pos + rng.randrange(0, 4)
            end = start + rng.choice([0, 0, 1, 3])
            if edits and end == start == edits[-1].end == edits[-1].start:
                continue  # two insertions at one point: apply_edits refuses them
            edits.append(Edit(start, end, "x" * rng.randrange(0, 6)))
            pos = end
        shift = splice_module._Shift(rng.sample(edits, len(edits)))
        offsets = [(offset, after) for offset in range(pos + 3) for after in (False, True)]
        for offset, after in offsets + rng.sample(offsets, len(offsets)):  # in order, and in any order
            assert shift(offset, after) == _shift_by_scan(offset, edits, after), (edits, offset, after)


def test_every_one_of_many_references_in_one_file_is_bumped_and_verified():
    """One multi-document file with a reference to the image in each of 400 documents (some through an
    alias, some kustomize entries that get a tag added): each is changed, and nothing else."""
    docs = []
    for i in range(400):
        if i % 4 == 0:
            docs.append(f"images:\n- name: team/app\n  newName: team/app\n# {i}\n")
        elif i % 4 == 1:
            docs.append(f"spec:\n  containers:\n  - name: a\n    image: &a team/app:1\n  - name: b{i}\n    image: *a\n")
        else:
            docs.append(pod("team/app:1") + f"  replicas: {i}\n")
    text = "---\n".join(docs)
    new, changes = update_images(text, [parse("team/app:2")], filename="kustomization.yaml")
    assert len(changes) == 400
    assert new == text.replace("team/app:1", "team/app:2").replace("  newName: team/app\n",
                                                                    "  newName: team/app\n  newTag: \"2\"\n")


MANY_DOCS = "".join(f"---\nkind: ConfigMap\ndata: {{n: '{i}'}}\n" for i in range(5)) + "---\n" + pod("team/app:1") \
    + "".join(f"---\nkind: Service\nspec: {{ports: [{i}]}}\n" for i in range(5))


def test_only_the_documents_naming_the_image_are_composed_and_the_whole_text_is_verified(monkeypatch):
    """The other documents are read (for errors, and for the verifier's events, all compared after the edit) but
    get no nodes: locate_result sees the one document naming the image, before and after the edit."""
    read = []
    real = splice_module.parse

    def parse_and_keep(text, *args, **kw):
        read.append(real(text, *args, **kw))
        return read[-1]

    monkeypatch.setattr(splice_module, "parse", parse_and_keep)
    new, changes = bump(MANY_DOCS, "team/app:2")
    assert new == MANY_DOCS.replace("team/app:1", "team/app:2") and len(changes) == 1
    assert [parsed.kept for parsed in read] == [{5}, {5}]  # the plan's reading, the verifying re-reading


def test_an_edit_that_changes_a_document_it_is_not_in_is_refused(monkeypatch):
    """The verifier compares every event of the edited text, not only those of the documents naming the image:
    an edit that starts a document of its own (and so shifts every document after it) is refused."""
    monkeypatch.setattr(splice_module, "render", lambda value, style, *a: (f"{value}\n---\nkind: Extra", style))
    with pytest.raises(VerificationError, match=r"re-reading the edited file does not give the intended values "
                                                r"\(event \d+: expected \('m', "):
        bump(MANY_DOCS, "team/app:2")


def test_a_document_too_deeply_nested_to_search_fails_the_bump_though_it_does_not_name_the_image():
    """As when every document is composed: the file is reported (not searched in part and bumped)."""
    text = pod("team/app:1") + "---\na: " + "[" * 401 + "]" * 401 + "\n"
    assert locate(text).error is not None
    with pytest.raises(YamlSyntaxError, match="nested more than 400 levels deep"):
        bump(text, "team/app:2")
