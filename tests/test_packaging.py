"""The sdist (what a distro packager or `pip download --no-binary` gets) carries the LICENSE its metadata
names, the whole tests tree (the tests are collected from the unpacked sdist), and what the README points
to: .ci/run and bench/."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_sdist_carries_the_license_the_whole_tests_tree_ci_run_and_bench(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy without an earlier build's egg-info (setuptools reads its file list)
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "*.egg-info", "build", "dist", "__pycache__", ".*_cache", ".hypothesis"))
    built = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(tmp_path)],
                           cwd=source, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (sdist,) = tmp_path.glob("gitops_cli-*.tar.gz")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    (top,) = (tmp_path / "unpacked").iterdir()
    # the tests, and what the README points to: .ci/run (set-up, test failures) and the benchmarks
    for tree in ("tests", ".ci", "bench"):
        wanted = {p.relative_to(ROOT) for p in (ROOT / tree).rglob("*") if p.is_file() and "__pycache__" not in p.parts}
        have = {p.relative_to(top) for p in (top / tree).rglob("*") if p.is_file()}
        assert wanted and wanted - have == set(), tree
    assert (top / ".ci" / "run").read_bytes() == (ROOT / ".ci" / "run").read_bytes()
    assert (top / "bench" / "RESULTS.md").is_file()
    assert (top / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()
    assert (top / "LICENSE").read_text().split()[:3] == ["Apache", "License", "Version"]
    metadata = (top / "PKG-INFO").read_text()
    assert "License-Expression: Apache-2.0" in metadata and "License-File: LICENSE" in metadata
    # --assert=plain: collecting needs no assertion rewriting (the run's own collection rewrites every module)
    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                "--assert=plain"], cwd=top, capture_output=True, text=True, timeout=300)
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    assert " tests collected" in collected.stdout.splitlines()[-1]


def test_no_floor_is_below_what_another_dependency_needs() -> None:
    """A declared floor that an installed dependency refuses (rich>=13.7 with typer 0.28, which needs
    rich>=13.8) cannot be installed: a resolver asked for the floors fails."""
    import tomllib
    from importlib.metadata import requires

    from packaging.requirements import Requirement
    from packaging.version import Version

    def floor(req: Requirement) -> Version | None:
        found = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
        return max(found) if found else None

    ours = {Requirement(r).name.lower(): Requirement(r)
            for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    for name in ours:
        for text in requires(name) or []:
            theirs = Requirement(text)
            if theirs.name.lower() not in ours or (theirs.marker and not theirs.marker.evaluate({"extra": ""})):
                continue
            declared = ours[theirs.name.lower()]
            mine, needed = floor(declared), floor(theirs)
            assert needed is None or (mine is not None and mine >= needed), f"{name} needs {theirs}: {declared}"


def test_the_operator_image_copies_what_the_package_build_needs(tmp_path: Path) -> None:
    """examples/operator/Dockerfile copied `pyproject.toml README.md` and the package, not the LICENSE that
    pyproject's `license-files` names: setuptools warned (an error from 2027 on) and the wheel had no license.
    The files its COPY lines put in /src build a wheel there with no missing file, its license included."""
    import re
    import zipfile

    text = (ROOT / "examples" / "operator" / "Dockerfile").read_text()
    src = tmp_path / "src"
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] != "COPY":
            continue
        *sources, dest = words[1:]
        assert dest.startswith("/src"), line
        target = tmp_path / dest.lstrip("/")
        for name in sources:
            where = target / name if dest.endswith("/") or len(sources) > 1 else target
            where.parent.mkdir(parents=True, exist_ok=True)
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, where, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copyfile(ROOT / name, where)
    assert re.search(r"^RUN pip install --no-cache-dir /src ", text, re.M)
    built = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path)],
                           cwd=src, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    assert "did not match any files" not in built.stdout + built.stderr, built.stdout + built.stderr
    (wheel,) = tmp_path.glob("gitops_cli-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in whl.namelist())
