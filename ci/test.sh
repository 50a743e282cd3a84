#!/usr/bin/env bash
# The test command (README): on a fresh Debian machine, install what the tests need, then run
# cargo fmt --check, clippy with warnings denied, every test, then the demo on the release build. Tests start their own services
# (docker-registry, ...) on free loopback ports and stop them; nothing is left running.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh

# CI builds once: incremental caches would only add to target/ (a CI disk may be small).
export CARGO_INCREMENTAL=0
echo "--- disk: $(df -h --output=avail . | tail -1 | tr -d ' ') free where target/ is built"

install_test_tools
echo "--- tools"
docker-registry --version
skopeo --version
echo "moto $("$TOOLS_DIR/venv/bin/python" -c 'import moto; print(moto.__version__)') at $(command -v moto_server)"
buildah --version
echo "node $(node --version), gitlab-ci-local $(gitlab-ci-local --version)"
check-jsonschema --version
hadolint --version

echo "--- cargo fmt --check"
cargo fmt --all -- --check
echo "--- cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "--- cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --locked --bins --tests 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole suite (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
[ "$status" -eq 0 ] || exit "$status"

# The release profile differs (size-optimised, panic = abort, no debug assertions): the demo runs
# once more with the binary users get, so a path that only breaks there fails here.
echo "--- release build: the demo with target/release/multiarch"
cargo build --release --locked --quiet
DEMO_BIN=target/release/multiarch bash ci/demo.sh
