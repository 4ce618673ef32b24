#!/usr/bin/env bash
# Installs Dovecot (IMAP) from Debian's packages when it is missing, without
# letting the packaged service start. The tests run their own private instances.
set -euo pipefail
if command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "Dovecot is missing and this is not root. Install it once with:" >&2
    echo "  sudo apt-get install -y --no-install-recommends dovecot-imapd" >&2
    exit 1
fi
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
fi
trap '[ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
echo "installing dovecot-imapd from Debian's packages..."
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dovecot-imapd >/dev/null
if [ -d /run/systemd/system ]; then
    systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
fi
echo "dovecot $(dovecot --version) installed"
