#!/usr/bin/env bash
# Build deploy/docker/Dockerfile where no Docker daemon runs and Docker Hub is
# out of reach, then run the image's otp-bot as uid 10001 on a read-only root.
#
#   sudo deploy/docker/check-without-docker.sh
#
# Needs root, Debian's buildah and debootstrap, and access to Debian's mirror
# and PyPI. The official python:3.11-slim-bookworm base is replaced by a
# Debian bookworm with its python3 (3.11) and /usr/local/bin/python, built
# with debootstrap; everything else is the Dockerfile as it is. Takes about
# 3 minutes; leaves the images in buildah's vfs storage (buildah rmi to drop).
set -euo pipefail
cd "$(dirname "$0")/../.."
B=(buildah --storage-driver vfs)
BASE=localhost/python-substitute:3.11-bookworm
WORK=$(mktemp -d /tmp/otp-bot-image.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

if ! "${B[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log"
    # Like the official image: python on PATH, pip usable outside Debian's rules,
    # and this machine's CA bundle (a TLS-inspecting proxy may sit before PyPI).
    rm -f "$WORK"/rootfs/usr/lib/python3*/EXTERNALLY-MANAGED
    ln -sf /usr/bin/python3 "$WORK/rootfs/usr/local/bin/python"
    cp /etc/ssl/certs/ca-certificates.crt "$WORK/rootfs/etc/ssl/certs/ca-certificates.crt"
    ctr=$("${B[@]}" from scratch)
    cp -a "$WORK/rootfs/." "$("${B[@]}" mount "$ctr")/"
    "${B[@]}" umount "$ctr" >/dev/null
    "${B[@]}" config --env PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt "$ctr"
    "${B[@]}" commit -q "$ctr" "$BASE" >/dev/null
    "${B[@]}" rm "$ctr" >/dev/null
fi

git archive HEAD | tar -x -C "$WORK" --one-top-level=context
"${B[@]}" bud --format docker --isolation chroot --build-arg "PYTHON_IMAGE=$BASE" \
    -f deploy/docker/Dockerfile -t localhost/otp-bot:check "$WORK/context"

ctr=$("${B[@]}" from localhost/otp-bot:check)
root=$("${B[@]}" mount "$ctr")
if ls "$root"/usr/bin | grep -Eq '^(gcc|cc|g\+\+|clang)'; then
    echo "a compiler is in the final image" >&2
    exit 1
fi
# The final stage's files, read-only, as the image's user; only /tmp is writable.
unshare --mount --propagation private sh -c '
    mount --bind "$0" "$0" && mount -t proc proc "$0/proc" && mount -t tmpfs tmpfs "$0/tmp"
    mount -o remount,bind,ro "$0"
    exec chroot --userspec=10001:10001 "$0" /usr/bin/env -i PYTHONDONTWRITEBYTECODE=1 \
        PATH=/opt/otp-bot/venv/bin:/usr/bin:/bin sh -c "id -u && otp-bot --version \
        && python -c \"import otp_bot.service, otp_bot.mailbox, otp_bot.control\" \
        && ! touch /var/lib/otp-bot/x 2>/dev/null && echo read-only root: ok"
' "$root"
"${B[@]}" umount "$ctr" >/dev/null
"${B[@]}" rm "$ctr" >/dev/null
"${B[@]}" inspect --type image --format '{{.Docker.Config.User}} {{.Docker.Config.Healthcheck.Test}}' \
    localhost/otp-bot:check
