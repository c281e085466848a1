#!/usr/bin/env bash
# Debian's Chromium at /usr/bin/chromium for the dashboard's browser test (Playwright drives
# it; Playwright never downloads a browser of its own). Idempotent: installed once.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
# A font, so that the page's text renders in the screenshot.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version
