#!/usr/bin/env bash
# Headless Chromium for the HTML-report test (tests/test_report.py): Debian's package,
# installed only when no chromium is on the PATH. Needs root (CI runs as root) or sudo.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y chromium
