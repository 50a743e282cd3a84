#!/usr/bin/env bash
# The README's demo: build multiarch, start a throwaway registry on a free loopback port, push two
# small per-architecture images (amd64, arm64), run `multiarch push` with the variables a GitLab
# `manifest` job would have, and show the result with `multiarch inspect` and skopeo.
# Everything it starts is stopped and removed on exit.
set -euo pipefail
called_from=$PWD
cd "$(dirname "$0")/.."
. ci/lib.sh
# python3 finds a free port (free_port in ci/lib.sh).
apt_install_missing python3:python3 docker-registry:docker-registry skopeo:skopeo umoci:umoci

# DEMO_BIN runs a binary built elsewhere (ci/test.sh smoke-tests the release build this way); a
# relative path is taken from where the script was called.
if [ -n "${DEMO_BIN:-}" ]; then
  bin=$(cd "$called_from" && realpath -e "$DEMO_BIN" 2>/dev/null) && [ -f "$bin" ] && [ -x "$bin" ] || {
    echo "DEMO_BIN=$DEMO_BIN is not an executable file (a relative path starts at $called_from)" >&2
    exit 2
  }
else
  check_rust
  echo "==> building multiarch"
  cargo build --quiet --locked
  bin="$PWD/target/debug/multiarch"
fi

work=$(mktemp -d)
registry_pid=""
# Stops the registry and removes everything; a killed registry's status (143) is not ours.
cleanup() {
  if [ -n "$registry_pid" ]; then
    kill "$registry_pid" 2>/dev/null || true
    wait "$registry_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(free_port)
host="127.0.0.1:$port"
cat >"$work/registry.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/storage}}
http: {addr: $host}
YAML
echo "==> starting docker-registry on $host"
docker-registry serve "$work/registry.yml" 2>"$work/registry.log" &
registry_pid=$!
up=""
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=yes; break; fi
  kill -0 "$registry_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$up" ]; then
  echo "docker-registry did not start on $host; its log:" >&2
  cat "$work/registry.log" >&2
  exit 1
fi

echo "==> pushing per-architecture images (what the build jobs would do)"
umoci init --layout "$work/layout"
for arch in amd64 arm64; do
  umoci new --image "$work/layout:$arch"
  umoci config --image "$work/layout:$arch" --os linux --architecture "$arch" \
    --config.env "BUILT_FOR=linux/$arch" \
    --config.label "org.opencontainers.image.revision=0123456789abcdef0123456789abcdef01234567"
  skopeo --insecure-policy copy --quiet --dest-tls-verify=false \
    "oci:$work/layout:$arch" "docker://$host/demo/app:latest-$arch"
  echo "    pushed $host/demo/app:latest-$arch"
done

echo "==> multiarch push (as the manifest job on the default branch)"
cd "$work"
env -i PATH="$PATH" HOME="$work" \
  GITLAB_CI=true CI_REGISTRY_IMAGE="$host/demo/app" \
  CI_DEFAULT_BRANCH=main CI_COMMIT_BRANCH=main CI_COMMIT_REF_SLUG=main \
  CI_COMMIT_SHA=0123456789abcdef0123456789abcdef01234567 \
  CI_PROJECT_URL=https://gitlab.example.com/demo/app \
  CI_COMMIT_TIMESTAMP=2026-11-27T12:00:00+00:00 \
  MULTIARCH_INSECURE_REGISTRIES="$host" \
  "$bin" push
echo "==> dotenv report for later jobs (multiarch.env)"
cat multiarch.env

echo "==> multiarch inspect $host/demo/app:latest"
MULTIARCH_INSECURE_REGISTRIES="$host" "$bin" inspect "$host/demo/app:latest"

echo "==> what an arm64 host pulls (skopeo, an independent client)"
skopeo --insecure-policy inspect --tls-verify=false --override-os linux --override-arch arm64 \
  "docker://$host/demo/app:latest" | grep -E '"(Architecture|Os)"'
echo "==> done; the registry is stopped and its storage removed"
exit 0
