#!/usr/bin/env bash
# Unpacks Courier-IMAP's imapd from Debian's packages into a private directory
# (/opt/courier-imap-test), for the tests that run against every IMAP server.
#
# courier-imap conflicts with dovecot-imapd, so it is not installed as a
# package: its .debs are downloaded and unpacked with dpkg -x, nothing runs
# from them at install time and no service is set up. The plain libraries it
# links against (no conflicts) are installed normally. The tests start imapd
# themselves (tests/courier.py), one process per connection, as couriertcpd
# would, with Debian's default settings.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
DEST=${COURIER_TEST_ROOT:-/opt/courier-imap-test}
if [ -x "$DEST/usr/bin/imapd" ]; then
    exit 0
fi
need_root "Courier-IMAP for the tests" "bash .ci/install-courier.sh"
echo "unpacking courier-imap from Debian's packages into $DEST..."
apt_install libidn12 libgamin0 libcourier-unicode4 libltdl7 libpcre3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"  # apt's download user must be able to write here
(cd "$work" && apt-get download -qq courier-imap courier-base courier-authlib 2>/dev/null)
mkdir -p "$DEST.tmp"
for deb in "$work"/*.deb; do
    dpkg -x "$deb" "$DEST.tmp"
done
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
LD_LIBRARY_PATH="$DEST/usr/lib" ldd "$DEST/usr/bin/imapd" | grep -q "not found" && {
    echo "imapd is missing libraries:" >&2
    LD_LIBRARY_PATH="$DEST/usr/lib" ldd "$DEST/usr/bin/imapd" | grep "not found" >&2
    exit 1
}
echo "courier-imap $(dpkg-deb -f "$work"/courier-imap_*.deb Version) unpacked in $DEST"
