"""Generate a deploy repo for the bump benchmark.

    python bench/bump/generate.py DIR --files N --matches M [--image NAME] [--tag TAG]

N Deployment manifests (about 60 lines each: comments, labels, env, probes, resources) spread over
team/app directories; M of them (evenly spaced) run NAME:TAG, the others run other images of the same
registry.  DIR becomes a git repository with one commit, so a run can be undone with `git reset --hard`.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--files", type=int, required=True)
    parser.add_argument("--matches", type=int, required=True)
    parser.add_argument("--image", default="registry.example.com/shop/checkout")
    parser.add_argument("--tag", default="1.0.0")
    args = parser.parse_args()
    if args.matches > args.files:
        parser.error("--matches must not exceed --files")
    root: Path = args.dir
    root.mkdir(parents=True, exist_ok=False)
    step = args.files / args.matches if args.matches else 0
    matching = {int(i * step) for i in range(args.matches)}
    container = args.image.rsplit("/", 1)[-1]
    for i in range(args.files):
        team = f"team{i % 50:02d}"
        name = f"service-{i:05d}"
        if i in matching:
            image, cname = f"{args.image}:{args.tag}", container
        else:
            image, cname = f"registry.example.com/shop/{name}:{args.tag}", "main"
        path = root / team / name / "deployment.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = TEMPLATE.format(name=name, team=team, replicas=1 + i % 5, image=image, container=cname)
        path.write_text(text)
    env = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "bench@localhost", "PATH": "/usr/bin:/bin"}
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "generated"]):
        subprocess.run(["git", *cmd], cwd=root, env=env, check=True)
    print(f"{root}: {args.files} manifests, {len(matching)} running {args.image}:{args.tag}")


if __name__ == "__main__":
    main()
