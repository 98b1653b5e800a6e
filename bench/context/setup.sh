#!/usr/bin/env bash
# Build the scratch app repositories of "build context at scale" (bench/RESULTS.md) under $W (/tmp/ctx-bench).
#   big-committed   a 1 GB file committed in the app repo
#   big-dockerign   a 1 GB untracked file ignored by .gitignore and by .dockerignore
#   big-gitign      a 1 GB untracked file ignored by .gitignore only (docker sends it)
#   big-untracked   a 1 GB untracked file ignored by neither (the tree is dirty: --allow-dirty)
#   ignored         50,000 files under node_modules/ (.dockerignore) + 50,000 under cache/ (.gitignore)
#   submods         20 submodules (file:// remotes), each with 200 files
#   mono            100,000 tracked files; the app is sub/app (gitops.toml: context = ".")
# Every Dockerfile starts FROM gitops-demo/busybox:1.36 (never pulled).
set -euo pipefail
W=${W:-/tmp/ctx-bench}
SIZE=${SIZE:-1G}
mkdir -p "$W"
export GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.invalid GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@example.invalid

app() {  # app DIR [dockerfile body]: a git repo with a Dockerfile and app.sh
  rm -rf "$1"; mkdir -p "$1"; git -C "$1" init -q -b main
  printf 'FROM gitops-demo/busybox:1.36\n%s\n' "${2:-COPY app.sh /app/}" > "$1/Dockerfile"
  echo 'echo hi' > "$1/app.sh"
}
commit() { git -C "$1" add -A; git -C "$1" commit -q -m "$2"; }

[ -f "$W/blob" ] || head -c "$SIZE" /dev/urandom > "$W/blob"

app "$W/big-committed"; cp "$W/blob" "$W/big-committed/data.bin"; commit "$W/big-committed" big
app "$W/big-dockerign"; echo data.bin > "$W/big-dockerign/.gitignore"; echo data.bin > "$W/big-dockerign/.dockerignore"
commit "$W/big-dockerign" app; cp "$W/blob" "$W/big-dockerign/data.bin"
app "$W/big-gitign"; echo data.bin > "$W/big-gitign/.gitignore"; commit "$W/big-gitign" app; cp "$W/blob" "$W/big-gitign/data.bin"
app "$W/big-untracked"; commit "$W/big-untracked" app; cp "$W/blob" "$W/big-untracked/data.bin"

app "$W/ignored"; echo cache/ > "$W/ignored/.gitignore"; printf 'node_modules\ncache\n' > "$W/ignored/.dockerignore"
echo node_modules/ >> "$W/ignored/.gitignore"
python3 - "$W/ignored" <<'PY'
import os, sys
root = sys.argv[1]
for top in ("node_modules", "cache"):
    for d in range(500):
        path = os.path.join(root, top, f"pkg{d:03d}", "lib")
        os.makedirs(path)
        for f in range(100):
            with open(os.path.join(path, f"f{f:03d}.js"), "w") as fh:
                fh.write(f"module.exports = {d * 100 + f};\n")
PY
commit "$W/ignored" app

rm -rf "$W/subs"; mkdir -p "$W/subs"
app "$W/submods"
for i in $(seq -w 1 20); do
  s="$W/subs/s$i"; git init -q -b main "$s"; mkdir -p "$s/src"
  for f in $(seq 1 200); do echo "$i $f" > "$s/src/f$f.txt"; done
  commit "$s" "sub $i"
  git -C "$W/submods" -c protocol.file.allow=always submodule add -q "file://$s" "vendor/s$i"
done
commit "$W/submods" app

app "$W/mono"; mv "$W/mono/Dockerfile" "$W/mono/app.sh" "$W/"; mkdir -p "$W/mono/sub/app"
mv "$W/Dockerfile" "$W/app.sh" "$W/mono/sub/app/"
printf 'image = "127.0.0.1:5999/ctx/mono"\ncontext = "."\n' > "$W/mono/sub/app/gitops.toml"
python3 - "$W/mono" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(1000):
    path = os.path.join(root, "services", f"svc{d:03d}", "src")
    os.makedirs(path)
    for f in range(100):
        with open(os.path.join(path, f"m{f:03d}.py"), "w") as fh:
            fh.write(f"X = {d * 100 + f}\n")
PY
commit "$W/mono" mono
echo "scratch repos ready in $W"
