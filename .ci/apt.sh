# What the .ci/install-*.sh scripts share (sourced by them, not run): each
# installs one outside tool the tests use from Debian's packages, only when it
# is missing, and only as root (otherwise it says what to run and fails).

# need_root WHAT COMMAND: unless root, say that WHAT is missing and how to
# install it (COMMAND, run as root), then exit 1.
need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "$1 is missing and this is not root. Install it once with:" >&2
        echo "  $2" >&2
        exit 1
    fi
}

# no_service_start: the packages installed from here on do not start their
# services (a policy-rc.d that refuses, removed at exit when this script made
# it). It sets the EXIT trap: call it only in a script with no trap of its own.
no_service_start() {
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
}

# apt_install PACKAGE...: quietly, without the recommended packages.
apt_install() {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# disable_units UNIT...: on a systemd machine, the packaged services stay off.
disable_units() {
    if [ -d /run/systemd/system ]; then
        systemctl disable --now "$@" >/dev/null 2>&1 || true
    fi
}
