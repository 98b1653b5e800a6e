"""CPU time of sync's reading of manifests (gitops_cli.sync.load_documents: the locator's parse, which picks
the parser and the text, then the loader), over every YAML file below DIR, or over a generated
multi-document file of N Deployments.  Run it with PYTHONPATH set to the gitops_cli tree to measure:

    python bench/sync/load.py --dir ../shared/corpus/real-world --rounds 5
    python bench/sync/load.py --documents 3000 --rounds 3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gitops_cli.sync import load_documents

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{i}
  labels: {{app: app-{i}, tier: web}}
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: c
          image: registry.example.com/team/app-{i}:v1.2.3
          args: ["--port", "8080", "--verbose"]
          env:
            - name: A
              value: "1"
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--documents", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.dir is not None:
        texts = [p.read_text(encoding="utf-8", errors="replace")
                 for p in sorted(args.dir.rglob("*")) if p.suffix in (".yaml", ".yml") and p.is_file()]
    else:
        texts = ["---\n".join(DEPLOYMENT.format(i=i) for i in range(args.documents))]
    size = sum(len(t) for t in texts)
    loaders: dict = {}
    start = time.process_time()
    for _ in range(args.rounds):
        for text in texts:
            try:
                load_documents(text, "bench.yaml", loaders)
            except Exception:  # a file sync refuses costs its reading too
                pass
    per = (time.process_time() - start) / args.rounds
    print(f"{len(texts)} file(s), {size // 1024} KiB: {per:.3f} s CPU per round ({args.rounds} rounds)")


if __name__ == "__main__":
    main()
