#!/usr/bin/env bash
# Installs promtool (Debian's prometheus package) when it is missing, without
# letting the packaged Prometheus server start: the tests run `promtool check
# rules` and `promtool test rules` on deploy/prometheus/alerts.yaml.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
if command -v promtool >/dev/null 2>&1; then
    exit 0
fi
need_root promtool "sudo apt-get install -y --no-install-recommends prometheus"
no_service_start
echo "installing prometheus (for promtool) from Debian's packages..."
apt_install prometheus
disable_units prometheus.service
promtool --version 2>&1 | head -n 1
