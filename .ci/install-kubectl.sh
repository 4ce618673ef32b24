#!/usr/bin/env bash
# Installs kubectl (Debian's kubernetes-client) when it is missing: the
# Kubernetes tests render deploy/k8s with its built-in kustomize. The tree is
# written to render with that old kustomize (v2.0.3) as well as current ones.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
if command -v kubectl >/dev/null 2>&1; then
    exit 0
fi
need_root kubectl "sudo apt-get install -y --no-install-recommends kubernetes-client"
echo "installing kubernetes-client (kubectl) from Debian's packages..."
apt_install kubernetes-client
kubectl version --client 2>/dev/null | head -n 1
