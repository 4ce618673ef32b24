#!/usr/bin/env bash
# Adds one LinkedIn account to this Kustomize tree: accounts/NAME/ with its
# kustomization and settings.env, an empty secrets/ folder (0700) for the
# secret files, and NAME in the top kustomization.yaml.
#   deploy/k8s/new-account.sh NAME ACCOUNT_ID IMAP_HOST IMAP_USER
# Then write the secrets as files (never placeholders), render and apply:
#   printf %s "$KEY" > deploy/k8s/accounts/NAME/secrets/OTP_BOT_API_KEY   (likewise
#   OTP_BOT_IMAP_PASSWORD, OTP_BOT_CONTROL_TOKEN), then kubectl apply -k deploy/k8s
set -euo pipefail
usage() { echo "usage: $0 NAME ACCOUNT_ID IMAP_HOST IMAP_USER" >&2; exit 2; }
[ $# -eq 4 ] || usage
name=$1 account_id=$2 imap_host=$3 imap_user=$4
# NAME ends up in object names: a DNS label, short enough for "otp-bot-settings-NAME".
[[ $name =~ ^[a-z0-9]([a-z0-9-]{0,34}[a-z0-9])?$ ]] || { echo "NAME must be a lowercase DNS label (a-z, 0-9, -), at most 36 characters" >&2; exit 2; }
for value in "$account_id" "$imap_host" "$imap_user"; do
  [[ $value =~ ^[A-Za-z0-9._@+-]+$ ]] || { echo "unexpected characters in '$value'" >&2; exit 2; }
done
here=$(cd "$(dirname "$0")" && pwd)
dir=$here/accounts/$name
[ ! -e "$dir" ] || { echo "accounts/$name exists already" >&2; exit 1; }
mkdir -p "$dir"
install -d -m 0700 "$dir/secrets"
sed "s/acme/$name/g" "$here/accounts/acme/kustomization.yaml" > "$dir/kustomization.yaml"
cat > "$dir/settings.env" <<SETTINGS
# Account "$name": every OTP_BOT_* setting except the secrets (.env.example lists
# them all). The Deployment sets OTP_BOT_STATE_DIR, OTP_BOT_CONTROL_ADDR,
# OTP_BOT_LOG_FORMAT and CREDENTIALS_DIRECTORY itself.
OTP_BOT_ACCOUNT_ID=$account_id
OTP_BOT_IMAP_HOST=$imap_host
OTP_BOT_IMAP_PORT=993
OTP_BOT_IMAP_USER=$imap_user
OTP_BOT_IMAP_SECURITY=tls
SETTINGS
printf '  - accounts/%s\n' "$name" >> "$here/kustomization.yaml"
echo "added accounts/$name; now write its secret files into accounts/$name/secrets/:"
echo "  OTP_BOT_API_KEY  OTP_BOT_IMAP_PASSWORD  OTP_BOT_CONTROL_TOKEN"
