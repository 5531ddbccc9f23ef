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
version=$("$V/ginv" --version)
echo "$version"
[ "$version" = "ginv $("$V/python" -c 'import ginv; print(ginv.__version__)')" ]
"$V/ginv" --help >/dev/null && "$V/ginv" reproduce --help >/dev/null
"$V/python" - <<'PY'
import importlib.metadata as md, importlib.util, pathlib, sys
import ginv
ginv.measure
for mod in ("matplotlib", "sklearn", "scipy", "submitit"):
    assert importlib.util.find_spec(mod) is None, f"{mod} leaked into the core install"
assert (pathlib.Path(ginv.__file__).parent / "py.typed").is_file()
meta = md.metadata("ginv")
assert meta["License-Expression"] == "MIT", meta["License-Expression"]
assert "make setup" not in meta["Description"] and "../shared" not in meta["Description"]
print("import ginv; ginv.measure: ok (no matplotlib, scikit-learn or scipy); MIT; typed")
PY
# the package description's example runs as written
sed -n '/^```python$/,/^```$/p' "$ROOT/docs/pypi.md" | sed '1d;$d' > example.py
"$V/python" example.py
set +e
"$V/ginv" reproduce table --profile smoke --out "$WORK/no-study" 2>err.txt
rc=$?
set -e
cat err.txt
[ "$rc" = 2 ] && [ "$(wc -l <err.txt)" = 1 ] && grep -q "pip install 'ginv\[study\]'" err.txt
if [ -n "${GINV_DATA_DIR:-}" ]; then
    step "train and measure a tiny model with the core install"
    "$V/ginv" train --epochs 1 --depth 1 --width 16 --n-train 512 --n-val 256 \
        --out "$WORK/runs" --quiet
    "$V/ginv" measure --checkpoint "$(dirname "$(ls "$WORK"/runs/*/run.json | head -1)")" \
        --subset 256 --si-subset 32 --steps 8 --quiet
fi

step "add ginv[study]"
"$V/pip" install -q --no-compile -c "$ROOT/requirements.txt" "ginv[study] @ file://$wheel"
if [ -n "${GINV_DATA_DIR:-}" ]; then
    # one group: the installed study trains, measures, plots and reports (both groups and
    # every experiment are the test suite's, on the source tree)
    "$V/ginv" reproduce table --profile smoke --set groups=R4 --out "$WORK/study" --quiet
else
    "$V/ginv" reproduce prop31 --profile smoke --out "$WORK/study" --quiet
fi
"$V/python" -c "import ginv.experiments.tsne"   # scikit-learn's T-SNE imports
test -s "$WORK/study/report.html"
set +e
"$V/ginv" reproduce prop31 --profile smoke --executor slurm --out "$WORK/no-cluster" 2>err.txt
rc=$?
set -e
cat err.txt
[ "$rc" = 2 ] && [ "$(wc -l <err.txt)" = 1 ] && grep -q "pip install 'ginv\[cluster\]'" err.txt

step "add ginv[cluster]"
"$V/pip" install -q --no-compile -c "$ROOT/requirements.txt" "ginv[cluster] @ file://$wheel"
"$V/python" -c "import submitit, ginv.cluster.slurm"
step "wheel check passed: $(basename "$wheel")"
