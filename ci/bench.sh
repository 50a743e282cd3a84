#!/usr/bin/env bash
# Benchmark (not part of ci/test.sh): the release multiarch against buildah's manifest commands
# on the same fixtures, through a latency-injecting proxy, for N = 2, 8, 15 platforms at 0 and
# 20 ms round-trip time; zero-stage publishing (--if-complete) in a build job; the two pipeline
# shapes run whole by gitlab-ci-local. Writes the report to BENCHMARKS.md (and stdout).
# BENCH_RUNS (default 5) sets the runs per measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
apt_install_missing docker-registry:docker-registry skopeo:skopeo buildah:buildah /usr/bin/time:time curl:curl \
  rsync:rsync git:git strip:binutils
# The pipeline rows run gitlab-ci-local (on Node 22), as the tests do.
npm_install_missing 'node:node@22' 'gitlab-ci-local:gitlab-ci-local@4'

echo "--- building the release binary (size-optimised profile)"
cargo build --release --locked --quiet
echo "--- building the benchmark harness"
cargo build --example bench --locked --quiet

report=$(mktemp)
trap 'rm -f "$report"' EXIT
MULTIARCH_BIN="$PWD/target/release/multiarch" target/debug/examples/bench >"$report"

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//' || true)
{
  echo "# Benchmarks"
  echo
  echo "Latest run of \`ci/bench.sh\` ($(date -u +%Y-%m-%d), multiarch $(target/release/multiarch --version | cut -d' ' -f2))."
  echo
  echo "Machine: $(nproc) cores (${cpu:-unknown CPU}), $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr);"
  echo "Debian's docker-registry $(docker-registry --version | awk '{print $3}') on loopback behind the"
  echo "user-space latency proxy of \`tests/it/support/proxy.rs\` (half the RTT each way, one RTT per new"
  echo "connection); buildah $(buildah --version | awk '{print $3}') with vfs storage. Medians of ${BENCH_RUNS:-5} runs, a fresh"
  echo "target tag each run; requests counted at the proxy; T = 1 target tag."
  echo
  cat "$report"
  echo
  echo "Reproduce: \`ci/bench.sh\` on a Debian machine with the Rust toolchain (it installs"
  echo "docker-registry, skopeo, buildah, rsync, git and binutils with apt-get, Node 22 and"
  echo "gitlab-ci-local with npm, and writes this file)."
} >BENCHMARKS.md
cat BENCHMARKS.md
