#!/usr/bin/env bash
# gitops lint vs yamllint on the shared real-world corpus, and `gitops --version` vs `import typer`.
# Usage: bench/lint/run.sh            (CORPUS=/path/to/yaml/tree to use another tree)
# Targets (issue #5): lint wall time <= 0.2x yamllint's; `gitops --version` <= 1.5x `python -c "import typer"`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CORPUS=${CORPUS:-$ROOT/../shared/corpus/real-world}
PY=$ROOT/.venv/bin/python
GITOPS=$ROOT/.venv/bin/gitops
OUT=$ROOT/bench/out/lint
mkdir -p "$OUT"
command -v hyperfine >/dev/null || { echo "hyperfine is not installed" >&2; exit 2; }
command -v yamllint >/dev/null || { echo "yamllint is not installed" >&2; exit 2; }

# What installing the wheel does: byte-compile the package (see bench/pipeline/run.sh).
"$PY" -m compileall -q "$ROOT/gitops_cli"

echo "== corpus: $CORPUS ($(find "$CORPUS" -name '*.y*ml' | wc -l) YAML files)" >&2
cd "$CORPUS"
# Both tools exit 1 on findings: -i keeps hyperfine going.  Output goes to /dev/null (hyperfine's default).
hyperfine -N -i --warmup 3 --runs 20 \
  --export-json "$OUT/corpus.json" --export-markdown "$OUT/corpus.md" \
  -n "gitops lint ." "$GITOPS lint ." \
  -n "yamllint ." "yamllint ."

# Informational: one small file (the per-invocation start-up cost a pre-commit run pays once).
ONE=Azure-Samples__aks-store-demo/ai-service.yaml
hyperfine -N -i --warmup 3 --runs 30 --export-markdown "$OUT/one-file.md" \
  -n "gitops lint (1 file)" "$GITOPS lint $ONE" \
  -n "yamllint (1 file)" "yamllint $ONE"

cd "$ROOT"
hyperfine -N --warmup 5 --runs 50 \
  --export-json "$OUT/startup.json" --export-markdown "$OUT/startup.md" \
  -n "python -c 'import typer'" "$PY -c 'import typer'" \
  -n "gitops --version" "$GITOPS --version"

"$PY" "$ROOT/bench/lint/ratios.py" "$OUT/corpus.json" "$OUT/startup.json"
