"""Print the two ratios the lint benchmark is judged on, from hyperfine's JSON exports."""

from __future__ import annotations

import json
import sys


def means(path: str) -> list[tuple[str, float, float]]:
    with open(path, encoding="utf-8") as fh:
        return [(r["command"], r["mean"], r["stddev"] or 0.0) for r in json.load(fh)["results"]]


def main(corpus_json: str, startup_json: str) -> int:
    (lint_name, lint, lint_sd), (yl_name, yl, yl_sd) = means(corpus_json)
    (typer_name, typer, typer_sd), (ver_name, ver, ver_sd) = means(startup_json)
    ok_lint, ok_ver = lint / yl <= 0.2, ver / typer <= 1.5
    def ms(mean: float, sd: float) -> str:
        return f"{mean * 1000:.1f} ± {sd * 1000:.1f} ms"

    print(f"{lint_name}: {ms(lint, lint_sd)}   {yl_name}: {ms(yl, yl_sd)}   "
          f"ratio {lint / yl:.3f}x (target <= 0.2x: {'met' if ok_lint else 'NOT met'})")
    print(f"{ver_name}: {ms(ver, ver_sd)}   {typer_name}: {ms(typer, typer_sd)}   "
          f"ratio {ver / typer:.2f}x (target <= 1.5x: {'met' if ok_ver else 'NOT met'})")
    return 0 if ok_lint and ok_ver else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
