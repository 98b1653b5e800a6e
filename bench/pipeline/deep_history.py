"""A `git fast-import` stream: DIR's files (the deploy repo) at the tip of N commits of bump history.

The history looks like a real deploy repo's: 200 services under history/svc-NNN/deployment.yaml, each
commit bumps one service's tag (one line changed), as a pipeline would.  Usage:
    python3 deep_history.py DIR N | git -C deep.git fast-import --quiet
"""

from __future__ import annotations

import sys
from pathlib import Path

SERVICES = 200
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: svc-{k:03d}
  labels: {{app: svc-{k:03d}}}
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: app
          image: registry.example.com/team/svc-{k:03d}:{tag}   # bumped by CI
          ports:
            - containerPort: 8080
"""


def blob(path: str, data: bytes) -> bytes:
    return b"M 644 inline " + path.encode() + b"\ndata %d\n" % len(data) + data + b"\n"


def commit(i: int, message: str, changes: list[bytes]) -> bytes:
    msg = message.encode()
    head = b"commit refs/heads/main\nmark :%d\ncommitter bench <bench@localhost> %d +0000\ndata %d\n%s\n" % (
        i, 1_600_000_000 + 60 * i, len(msg), msg)
    parent = b"from :%d\n" % (i - 1) if i > 1 else b""
    return head + parent + b"".join(changes) + b"\n"


def main() -> None:
    root, n = Path(sys.argv[1]), int(sys.argv[2])
    out = sys.stdout.buffer
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.relative_to(root).parts]
    first = [blob(p.relative_to(root).as_posix(), p.read_bytes()) for p in files]
    first += [blob(f"history/svc-{k:03d}/deployment.yaml", DEPLOYMENT.format(k=k, tag="0000000").encode())
              for k in range(SERVICES)]
    out.write(commit(1, "Initial manifests", first))
    for i in range(2, n + 1):
        k = i % SERVICES
        text = DEPLOYMENT.format(k=k, tag=f"{i:07x}").encode()
        out.write(commit(i, f"Update svc-{k:03d} to {i:07x}", [blob(f"history/svc-{k:03d}/deployment.yaml", text)]))


if __name__ == "__main__":
    main()
