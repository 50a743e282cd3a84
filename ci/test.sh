#!/usr/bin/env bash
# The test command (README): on a fresh Debian machine, install what the tests need, then run
# cargo fmt --check, clippy with warnings denied, every test, then the demo on the release build.
# Tests start their own services (docker-registry, ...) on free loopback ports and stop them;
# nothing is left running.
#
#   ci/test.sh            everything, in that order (what CI and a developer run)
#   ci/test.sh lint       fmt and clippy
#   ci/test.sh test       unit tests and the integration tests that need no namespaces
#   ci/test.sh e2e        the pipelines run by gitlab-ci-local and the bind-mount cases: they need
#                         user and mount namespaces (buildah, unshare), which some runners refuse
#   ci/test.sh release    the release build, and the demo run with it
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh

step=${1:-all}
case "$step" in
  all | lint | test | e2e | release) ;;
  *)
    echo "ci/test.sh: unknown step '$step'; use one of: all, lint, test, e2e, release" >&2
    exit 2
    ;;
esac
wants() { [ "$step" = all ] || [ "$step" = "$1" ]; }

# CI builds once: incremental caches would only add to target/ (a CI disk may be small).
export CARGO_INCREMENTAL=0
echo "--- disk: $(df -h --output=avail . | tail -1 | tr -d ' ') free where target/ is built"

# Integration-test filters (tests/it) of the e2e step; the test step skips the same ones.
e2e_filters=(gitlab:: own_builds:: build_destination:: zero_stage:: bind_mount)

if [ "$step" = lint ]; then
  install_rust_components
else
  install_test_tools
  echo "--- tools"
  docker-registry --version
  skopeo --version
  echo "moto $("$TOOLS_DIR/venv/bin/python" -c 'import moto; print(moto.__version__)') at $(command -v moto_server)"
  buildah --version
  echo "node $(node --version), gitlab-ci-local $(gitlab-ci-local --version)"
  check-jsonschema --version
  hadolint --version
fi

if wants lint; then
  echo "--- cargo fmt --check"
  cargo fmt --all -- --check
  echo "--- cargo clippy"
  cargo clippy --all-targets --locked -- -D warnings
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Runs `cargo test` with the given arguments, its output also in $log; returns its status.
run_tests() {
  set +e
  cargo test --locked "$@" 2>&1 | tee -a "$log"
  local status=${PIPESTATUS[0]}
  set -e
  return "$status"
}

status=0
if [ "$step" = all ]; then
  echo "--- cargo test"
  run_tests --bins --tests || status=$?
else
  skips=()
  for f in "${e2e_filters[@]}"; do skips+=(--skip "$f"); done
  if wants test; then
    echo "--- cargo test: unit tests, integration tests without namespaces"
    run_tests --bins || status=$?
    run_tests --test it -- "${skips[@]}" || status=$?
  fi
  if wants e2e; then
    echo "--- cargo test: pipelines (gitlab-ci-local) and bind mounts"
    run_tests --test it -- "${e2e_filters[@]}" || status=$?
  fi
fi
if [ -s "$log" ]; then
  # One closing line for the whole run (cargo prints one per test binary).
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
       END { printf "%d passed, %d failed\n", p, f }' "$log"
fi
[ "$status" -eq 0 ] || exit "$status"

if wants release; then
  # The release profile differs (size-optimised, panic = abort, no debug assertions): the demo
  # runs once more with the binary users get, so a path that only breaks there fails here.
  echo "--- release build: the demo with target/release/multiarch"
  cargo build --release --locked --quiet
  DEMO_BIN=target/release/multiarch bash ci/demo.sh
fi
