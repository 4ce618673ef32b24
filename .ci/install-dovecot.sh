#!/usr/bin/env bash
# Installs Dovecot (IMAP) from Debian's packages when it is missing, without
# letting the packaged service start. The tests run their own private instances.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
if command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ]; then
    exit 0
fi
need_root Dovecot "sudo apt-get install -y --no-install-recommends dovecot-imapd"
no_service_start
echo "installing dovecot-imapd from Debian's packages..."
apt_install dovecot-imapd
disable_units dovecot.service dovecot.socket
echo "dovecot $(dovecot --version) installed"
