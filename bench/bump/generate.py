"""Generate a deploy repo for the bump benchmark.

    python bench/bump/generate.py DIR --files N --matches M [--image NAME] [--tag TAG] [--one-file] [--images K]

N Deployment manifests (about 60 lines each: comments, labels, env, probes, resources) spread over
team/app directories; M of them (evenly spaced) run NAME:TAG, the others run other images of the same
registry.  With --one-file: N small Deployment documents (16 lines, ~330 bytes each) in one multi-document
file, DIR/all.yaml, M of them (evenly spaced) running NAME:TAG, the others one of 50 other images (16,000
documents make 5 MB).  DIR becomes a git repository with one commit, so a run can be undone with
`git reset --hard`.  With --images K (K > 1): the M matching manifests (or documents) run K images in turn,
NAME-00:TAG ... NAME-<K-1>:TAG, for a bump of K images at once (`--image NAME-00:NEW --image NAME-01:NEW ...`).
Deterministic: the same arguments give the same bytes.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

TEMPLATE = """\
# {name}: generated for the gitops bump benchmark
# Owned by team {team}; image bumped by CI.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {team}
  labels:
    app.kubernetes.io/name: {name}
    app.kubernetes.io/part-of: shop
  annotations:
    description: "{name} service (replicas: {replicas})"
spec:
  replicas: {replicas}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      app.kubernetes.io/name: {name}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {name}
    spec:
      serviceAccountName: {name}
      securityContext: {{runAsNonRoot: true, runAsUser: 10001}}
      containers:
        - name: {container}
          image: {image}   # set by the pipeline
          imagePullPolicy: IfNotPresent
          args: ["--port=8080", "--log-format=json"]
          ports:
            - name: http
              containerPort: 8080
          env:
            - name: SERVICE_NAME
              value: '{name}'
            - name: GOMAXPROCS
              valueFrom:
                resourceFieldRef: {{resource: limits.cpu}}
          readinessProbe:
            httpGet: {{path: /ready, port: http}}
            periodSeconds: 5
          livenessProbe:
            httpGet: {{path: /healthz, port: http}}
            initialDelaySeconds: 10

          resources:
            requests: {{cpu: 100m, memory: 128Mi}}
            limits: {{cpu: "1", memory: 256Mi}}
        - name: metrics
          image: registry.example.com/platform/metrics-agent:3.4.1
          ports: [{{name: metrics, containerPort: 9100}}]
"""

# --one-file: one document of a multi-document file
DOCUMENT = """\
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: svc-{i}
  labels: {{app: svc-{i}}}
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: app
          image: {image}   # bumped by CI
          env:
            - name: A
              value: "{i}"
"""


def matching_image(image: str, images: int, k: int) -> str:
    """The image of the k-th matching manifest (or document): NAME, or with --images, NAME-NN in turn."""
    return image if images <= 1 else f"{image}-{k % images:02d}"


def write_files(root: Path, files: int, matching: set[int], image: str, tag: str, images: int) -> None:
    k = 0
    for i in range(files):
        team = f"team{i % 50:02d}"
        name = f"service-{i:05d}"
        if i in matching:
            named = matching_image(image, images, k)
            k += 1
            ref, cname = f"{named}:{tag}", named.rsplit("/", 1)[-1]
        else:
            ref, cname = f"registry.example.com/shop/{name}:{tag}", "main"
        path = root / team / name / "deployment.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(TEMPLATE.format(name=name, team=team, replicas=1 + i % 5, image=ref, container=cname))


def write_one_file(root: Path, files: int, matching: set[int], image: str, tag: str, images: int) -> None:
    registry = image.rsplit("/", 1)[0]
    k = 0
    with open(root / "all.yaml", "w") as out:
        for i in range(files):
            if i in matching:
                ref = f"{matching_image(image, images, k)}:{tag}"
                k += 1
            else:
                ref = f"{registry}/other{i % 50}:{tag}"
            out.write(DOCUMENT.format(i=i, image=ref))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--files", type=int, required=True)
    parser.add_argument("--matches", type=int, required=True)
    parser.add_argument("--image", default="registry.example.com/shop/checkout")
    parser.add_argument("--tag", default="1.0.0")
    parser.add_argument("--one-file", action="store_true",
                        help="N documents in one file, all.yaml, instead of N files")
    parser.add_argument("--images", type=int, default=1,
                        help="K images (NAME-00 ... NAME-<K-1>) run by the M matching manifests in turn")
    args = parser.parse_args()
    if args.matches > args.files:
        parser.error("--matches must not exceed --files")
    root: Path = args.dir
    root.mkdir(parents=True, exist_ok=False)
    step = args.files / args.matches if args.matches else 0
    matching = {int(i * step) for i in range(args.matches)}
    (write_one_file if args.one_file else write_files)(root, args.files, matching, args.image, args.tag,
                                                              args.images)
    env = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "bench@localhost", "PATH": "/usr/bin:/bin"}
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "generated"]):
        subprocess.run(["git", *cmd], cwd=root, env=env, check=True)
    what = "documents in all.yaml" if args.one_file else "manifests"
    named = args.image if args.images <= 1 else f"{args.image}-NN ({args.images} images)"
    print(f"{root}: {args.files} {what}, {len(matching)} running {named}:{args.tag}")


if __name__ == "__main__":
    main()
