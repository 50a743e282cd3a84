# Shared by the ci/ scripts: install missing tools from Debian (as root, or through sudo).

# apt-get install for every package whose command is missing: "command:package" pairs.
apt_install_missing() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# What the integration tests use: the CNCF registry and skopeo (independent client, fixtures).
install_test_tools() {
  apt_install_missing docker-registry:docker-registry skopeo:skopeo
}

# A TCP port nobody listens on, on loopback.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
