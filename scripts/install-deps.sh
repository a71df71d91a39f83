#!/usr/bin/env bash
# Installs the Debian packages hm9k's tests and demo use: NATS, OpenIPMI's ipmi_sim + ipmitool,
# OpenSSH (sshd for recovery commands), openssl (certificates for the local control plane).
set -euo pipefail
PKGS=(nats-server openipmi ipmitool openssh-server openssh-client openssl ca-certificates procps)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[install-deps] installing: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
command -v go >/dev/null || { echo "go is required to build kube-apiserver, etcd and helm (https://go.dev/dl)" >&2; exit 1; }
# HM9K_QUIET=1 (scripts/setup.sh): say nothing when nothing had to be installed.
[ "${HM9K_QUIET:-}" = 1 ] && [ ${#missing[@]} -eq 0 ] || echo "Debian packages present: ${PKGS[*]}"

# --- OpenStack (issue 11): real Keystone/Nova/Placement/Glance/Neutron for the node half's tests ---
# ~3 min and ~1 GB on a clean bookworm machine; skipped when installed. HM9K_NO_OPENSTACK=1 skips it.
[ "${HM9K_NO_OPENSTACK:-}" = 1 ] || bash "$(dirname "$0")/install-openstack.sh"
# --- end OpenStack ---
