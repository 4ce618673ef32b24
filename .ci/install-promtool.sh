#!/usr/bin/env bash
# Installs promtool (Debian's prometheus package) when it is missing, without
# letting the packaged Prometheus server start: the tests run `promtool check
# rules` and `promtool test rules` on deploy/prometheus/alerts.yaml.
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "promtool is missing and this is not root. Install it once with:" >&2
    echo "  sudo apt-get install -y --no-install-recommends prometheus" >&2
    exit 1
fi
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
fi
trap '[ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
echo "installing prometheus (for promtool) from Debian's packages..."
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
if [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
promtool --version 2>&1 | head -n 1
