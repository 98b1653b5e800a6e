"""A `git fast-import` stream: DIR's files (the deploy repo) at the tip of N commits of bump history.

The history looks like a real deploy repo's: services under history/svc-NNN/deployment.yaml, each
commit bumps one service's tag (one line changed), as a pipeline would.  Usage:
    python3 deep_history.py DIR N | git -C deep.git fast-import --quiet
    python3 deep_history.py DIR N --services 2000 --long | git -C heavy.git fast-import --quiet

Default: 200 services, 14-line manifests (a light history: 6.5 MB packed for N=10,000).  --long: the
~60-line manifests of bench/bump/generate.py (comments, labels, env, probes, two containers) under
TEAM/NAME/deployment.yaml, as a real deploy repo's are.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable
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


Manifest = Callable[[int, str], tuple[str, bytes]]  # (service index, tag) -> (path, content)


def short_manifest(k: int, tag: str) -> tuple[str, bytes]:
    return f"history/svc-{k:03d}/deployment.yaml", DEPLOYMENT.format(k=k, tag=tag).encode()


def long_manifest() -> Manifest:
    """bench/bump/generate.py's ~60-line Deployment (one source of truth for the template)."""
    spec = importlib.util.spec_from_file_location("generate", Path(__file__).parent.parent / "bump" / "generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)

    def manifest(k: int, tag: str) -> tuple[str, bytes]:
        team, name = f"team{k % 50:02d}", f"service-{k:05d}"
        text = generate.TEMPLATE.format(name=name, team=team, replicas=1 + k % 5, container="main",
                                        image=f"registry.example.com/shop/{name}:{tag}")
        return f"{team}/{name}/deployment.yaml", text.encode()

    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", type=Path)
    parser.add_argument("commits", type=int)
    parser.add_argument("--services", type=int, default=SERVICES)
    parser.add_argument("--long", action="store_true", help="~60-line manifests (bench/bump/generate.py)")
    args = parser.parse_args()
    root, n, services = args.dir, args.commits, args.services
    manifest = long_manifest() if args.long else short_manifest
    out = sys.stdout.buffer
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.relative_to(root).parts]
    first = [blob(p.relative_to(root).as_posix(), p.read_bytes()) for p in files]
    first += [blob(*manifest(k, "0000000")) for k in range(services)]
    out.write(commit(1, "Initial manifests", first))
    for i in range(2, n + 1):
        k = i % services
        path, text = manifest(k, f"{i:07x}")
        out.write(commit(i, f"Update {path.rsplit('/', 2)[-2]} to {i:07x}", [blob(path, text)]))


if __name__ == "__main__":
    main()
