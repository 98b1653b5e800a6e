"""Property tests: generated manifests (comments, quotes, flow style, anchors, CRLF, BOM, multi-document).

Each example is a small model rendered to text.  Bumping one repository must give exactly the text the
model renders to after updating its matching images (so nothing else moved), and an independent YAML
loader must read the expected data from it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from gitops_cli import imageref
from gitops_cli.yamledit import locate, update_images

REPOS = ["team/app", "team/app-worker", "docker.io/team/app", "nginx", "docker.io/library/nginx",
         "localhost:5000/app", "localhost:5001/app", "ghcr.io/org/svc"]
TAGS = [None, "1.0", "v2", "latest", "2024.01", "1.10"]
DIGESTS = [None, "sha256:" + "c" * 64]
NEW_DIGEST = "sha256:" + "d" * 64


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    style: str       # plain | single | double
    flow: bool
    comment: bool
    anchor: bool = False  # `&img` on this image; a later init container uses `*img`
    flow_colon: bool = False  # flow + plain: written plain with its ':' (YAML 1.2; libyaml refuses it)


def _quote(value: str, style: str, flow: bool, flow_colon: bool) -> str:
    if style == "plain" and flow and ":" in value and not flow_colon:
        style = "double"  # quoted, unless the file already has it plain (then bumps keep it plain)
    return {"plain": value, "single": f"'{value}'", "double": f'"{value}"'}[style]


def _render_container(c: Container, nl: str) -> str:
    value = ("&img " if c.anchor else "") + _quote(c.image, c.style, c.flow, c.flow_colon)
    comment = "  # pinned by CI" if c.comment else ""
    if c.flow:
        return f"      - {{name: {c.name}, image: {value}}}{comment}{nl}"
    return f"      - name: {c.name}{nl}        image: {value}{comment}{nl}"


def render(docs: list[list[Container]], nl: str, bom: bool, final_newline: bool, alias: bool) -> str:
    parts = []
    for i, containers in enumerate(docs):
        body = (f"# document {i}{nl}apiVersion: apps/v1{nl}kind: Deployment{nl}metadata:{nl}  name: d{i}{nl}"
                f"  annotations:{nl}    image: \"team/app:0.1\"{nl}spec:{nl}  template:{nl}    spec:{nl}"
                f"      containers:{nl}")
        body += "".join(_render_container(c, nl) for c in containers)
        if alias and i == 0 and any(c.anchor for c in containers):
            body += f"      initContainers:{nl}      - name: init{nl}        image: *img{nl}"
        body += f"      args: [\"--image=team/app:1.0\"]{nl}"
        parts.append(body)
    text = f"---{nl}".join(parts)
    if not final_newline:
        text = text[: -len(nl)]
    return ("\ufeff" if bom else "") + text


def expected_image(image: str, target: imageref.ImageRef) -> str:
    ref = imageref.parse(image)
    if not ref.same_repository(target):
        return image
    if ref.digest is not None:
        tag = f":{target.tag}" if ref.tag is not None else ""
        return f"{ref.name}{tag}@{target.digest}"
    return f"{ref.name}:{target.tag}"


@st.composite
def images(draw) -> str:
    out = draw(st.sampled_from(REPOS))
    tag, digest = draw(st.sampled_from(TAGS)), draw(st.sampled_from(DIGESTS))
    return out + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


@st.composite
def containers(draw, index: int) -> Container:
    style = draw(st.sampled_from(["plain", "single", "double"]))
    image, flow = draw(images()), draw(st.booleans())
    flow_colon = style == "plain" and flow and ":" in image and draw(st.booleans())
    return Container(name=f"c{index}", image=image, style=style, flow=flow, comment=draw(st.booleans()),
                     flow_colon=flow_colon)


@st.composite
def models(draw):
    docs = []
    for _ in range(draw(st.integers(1, 3))):
        n = draw(st.integers(1, 4))
        docs.append([draw(containers(i)) for i in range(n)])
    alias = draw(st.booleans())
    if alias:
        docs[0][0] = replace(docs[0][0], anchor=True)
    return docs, draw(st.sampled_from(["\n", "\r\n"])), draw(st.booleans()), draw(st.booleans()), alias


def _load_all(text: str) -> list:
    return list(YAML(typ="safe", pure=True).load_all(io.StringIO(text.lstrip("\ufeff"))))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=models(), repo=st.sampled_from(REPOS), tag=st.sampled_from(["2.0", "v3", "1.10", "20240101"]))
def test_bump_changes_exactly_the_matching_values(model, repo, tag):
    docs, nl, bom, final_newline, alias = model
    text = render(docs, nl, bom, final_newline, alias)
    target = imageref.parse(f"{repo}:{tag}@{NEW_DIGEST}")
    new_docs = [[replace(c, image=expected_image(c.image, target)) for c in cs] for cs in docs]
    want = render(new_docs, nl, bom, final_newline, alias)

    new_text, changes = update_images(text, [target], filename="gen.yaml")

    assert new_text == want
    old_images = [c.image for cs in docs for c in cs]
    new_images = [c.image for cs in new_docs for c in cs]
    assert len(changes) == sum(a != b for a, b in zip(old_images, new_images, strict=True))
    data = _load_all(new_text)  # an independent loader reads the intended data
    assert len(data) == len(new_docs)
    for doc, containers_ in zip(data, new_docs, strict=True):
        spec = doc["spec"]["template"]["spec"]
        assert [c["image"] for c in spec["containers"]] == [c.image for c in containers_]
        assert doc["metadata"]["annotations"]["image"] == "team/app:0.1"
    located = [r.value for r in locate(new_text).references if r.kind == "container" and not r.via_alias]
    assert located == new_images
