#!/usr/bin/env bash
# Installs kubectl (Debian's kubernetes-client) when it is missing: the
# Kubernetes tests render deploy/k8s with its built-in kustomize. The tree is
# written to render with that old kustomize (v2.0.3) as well as current ones.
set -euo pipefail
if command -v kubectl >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "kubectl is missing and this is not root. Install it once with:" >&2
    echo "  sudo apt-get install -y --no-install-recommends kubernetes-client" >&2
    exit 1
fi
echo "installing kubernetes-client (kubectl) from Debian's packages..."
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null
kubectl version --client 2>/dev/null | head -n 1
