#!/usr/bin/env bash
# Build ginv's wheel from this tree and check it as a user gets it: in a fresh, plain venv
# (no system site-packages), first with the core dependencies only, then with `ginv[study]`,
# then with `ginv[cluster]` (submitit).
# Usage: scripts/check-wheel.sh [python]   (`make wheel-check`; CI runs it from .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_PY=.venv/bin/python        # has setuptools; the build needs no network
NEW_PY=${1:-python3}             # makes the fresh venv
WORK=$PWD/build/wheel-check
step() { printf '\n== [%ss] %s\n' "$SECONDS" "$*"; }
# `--no-compile` below: byte-compiling at install is 2/3 of installing torch (40 s against
# 13 s here) and checks nothing of ginv's; Python compiles what it imports as it imports it.

rm -rf "$WORK" build/lib build/bdist.*   # no stale build tree may leak into the wheel
mkdir -p "$WORK"
step "build the wheel"
"$BUILD_PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" .
wheel=$(ls "$WORK"/dist/ginv-*.whl)
echo "$wheel"
"$BUILD_PY" - "$wheel" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
for need in ("ginv/py.typed", "ginv/cli.py", "ginv/experiments/registry.py"):
    assert need in names, f"{need} missing from the wheel"
assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "LICENSE missing"
assert not any(n.startswith(("tests/", "bench/", "scripts/")) for n in names), names
print(f"{len(names)} files, py.typed and LICENSE included")
PY

step "fresh venv, core dependencies only"
"$NEW_PY" -m venv "$WORK/venv"
V=$WORK/venv/bin
"$V/pip" install -q --no-compile torch==2.13.0              # this machine's local CPU build
"$V/pip" install -q --no-compile -c "$ROOT/requirements.txt" "$wheel"
export GINV_CACHE_DIR=$WORK/cache
cd "$WORK"                                      # import the installed ginv, not ./src
version=$("$V/ginv" --version)                  # the console script itself
echo "$version"
# the rest in one interpreter (each `ginv` process spends ~3 s importing torch): the help
# pages, the core install's contents and metadata, the package description's example as
# written, and the one-line error of a study command without the study extra
sed -n '/^```python$/,/^```$/p' "$ROOT/docs/pypi.md" | sed '1d;$d' > example.py
"$V/python" - "$version" "$WORK/no-study" <<'PY'
import contextlib, importlib.metadata as md, importlib.util, io, pathlib, runpy, sys
import ginv
from ginv.cli import main

assert sys.argv[1] == f"ginv {ginv.__version__}", sys.argv[1]
def ginv_cli(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, err.getvalue()
assert ginv_cli("--help")[0] == 0 and ginv_cli("reproduce", "--help")[0] == 0
ginv.measure
for mod in ("matplotlib", "sklearn", "scipy", "submitit"):
    assert importlib.util.find_spec(mod) is None, f"{mod} leaked into the core install"
assert (pathlib.Path(ginv.__file__).parent / "py.typed").is_file()
meta = md.metadata("ginv")
assert meta["License-Expression"] == "MIT", meta["License-Expression"]
assert "make setup" not in meta["Description"] and "../shared" not in meta["Description"]
print("ginv --help; import ginv; ginv.measure: ok (no matplotlib, scikit-learn or scipy); MIT; typed")
runpy.run_path("example.py", run_name="__main__")
code, err = ginv_cli("reproduce", "table", "--profile", "smoke", "--out", sys.argv[2])
print(err, end="")
assert code == 2 and err.count("\n") == 1 and "pip install 'ginv[study]'" in err, (code, err)
PY
if [ -n "${GINV_DATA_DIR:-}" ]; then
    step "train and measure a tiny model with the core install"
    "$V/ginv" train --epochs 1 --depth 1 --width 16 --n-train 512 --n-val 256 \
        --out "$WORK/runs" --quiet
    "$V/ginv" measure --checkpoint "$(dirname "$(ls "$WORK"/runs/*/run.json | head -1)")" \
        --subset 256 --si-subset 32 --steps 8 --quiet
fi

step "add ginv[study]"
"$V/pip" install -q --no-compile -c "$ROOT/requirements.txt" "ginv[study] @ file://$wheel"
# the installed study runs an experiment, plots it and reports it: the proposition's check,
# which needs no data and trains nothing (every experiment on the data is the test suite's,
# on the source tree; the core install above trained and measured from the wheel)
"$V/ginv" reproduce prop31 --profile smoke --out "$WORK/study" --quiet
test -s "$WORK/study/report.html"
set +e
"$V/ginv" reproduce prop31 --profile smoke --executor slurm --out "$WORK/no-cluster" 2>err.txt
rc=$?
set -e
cat err.txt
[ "$rc" = 2 ] && [ "$(wc -l <err.txt)" = 1 ] && grep -q "pip install 'ginv\[cluster\]'" err.txt

step "add ginv[cluster]"
"$V/pip" install -q --no-compile -c "$ROOT/requirements.txt" "ginv[cluster] @ file://$wheel"
"$V/python" -c "import submitit, ginv.cluster.slurm, ginv.experiments.tsne"  # and T-SNE's scikit-learn
step "wheel check passed: $(basename "$wheel")"
