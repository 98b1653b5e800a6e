"""Labels as build-API parameters (one builder step each) vs ONE LABEL line in the Dockerfile.

    .venv/bin/python bench/pipeline/labels.py APP_DIR [RUNS]

Builds APP_DIR (a Dockerfile on gitops-demo/busybox:1.36) RUNS times each way, alternating, with a
file in the context changed before every build (no layer-cache hit), the 4 labels build-and-bump sets
(created, revision, version, tested-command).  Prints the mean and min wall time and the builder steps.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from gitops_cli import engine

LABELS = {
    "org.opencontainers.image.created": "2026-01-01T00:00:00Z",
    "org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567",
    "org.opencontainers.image.version": "0123456",
    "dev.gitops-cli.tested-command": "make test",
}


def build(client: object, app: Path, via_api: bool, i: int) -> tuple[float, int]:
    (app / "app.sh").write_text(f"#!/bin/sh\n# build {time.time_ns()} {i}\necho hello\n")
    steps: list[str] = []

    def on_line(line: str) -> None:
        if line.startswith("Step "):
            steps.append(line)

    start = time.perf_counter()
    if via_api:  # what engine.build did before: the build API's labels parameter
        stream = client.build(path=str(app), tag="gitops-bench/labels:api", labels=LABELS, rm=True,  # type: ignore[attr-defined]
                              forcerm=True, decode=True)
        tracker = engine.BuildTracker()
        for event in stream:
            for line in tracker.feed(event):
                on_line(line)
        assert tracker.image_id and not tracker.error, tracker.error
    else:
        engine.build(client, context=str(app), dockerfile=None, tag="gitops-bench/labels:line", labels=LABELS,  # type: ignore[arg-type]
                     on_line=on_line, environ={"DOCKER_BUILDKIT": "0"})  # both sides on the legacy builder
    return time.perf_counter() - start, len(steps)


def main() -> None:
    app, runs = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 10
    client = engine.connect()
    times: dict[bool, list[float]] = {True: [], False: []}
    steps: dict[bool, int] = {}
    for i in range(runs + 1):
        for via_api in (True, False):
            seconds, steps[via_api] = build(client, app, via_api, i)
            if i:  # the first round warms up
                times[via_api].append(seconds)
    for via_api, name in ((True, "API labels (one step each)"), (False, "one LABEL line")):
        t = times[via_api]
        print(f"{name:28} {steps[via_api]} steps  mean {statistics.mean(t):.3f} s  "
              f"± {statistics.stdev(t):.3f}  min {min(t):.3f} s  ({runs} runs)")
    for tag in ("api", "line"):
        client.remove_image(f"gitops-bench/labels:{tag}", force=True)  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
