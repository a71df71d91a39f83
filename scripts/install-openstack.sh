#!/usr/bin/env bash
# Installs the Debian packages of the real OpenStack that the node half's whole-system tests and the
# demo run against (src/devenv/openstack.ts): MariaDB, RabbitMQ, Keystone, Placement, Glance,
# Neutron (server only), Nova API/conductor/scheduler (nova-compute runs from python3-nova with the
# fake driver: Debian's nova-compute package would pull libvirt and qemu). Idempotent: nothing is
# done when all are installed. The services are never started or configured by the packages:
# policy-rc.d forbids starts during the install, and debconf answers skip every database,
# RabbitMQ, Keystone and endpoint set-up question (the devenv writes its own configs).
set -euo pipefail
PKGS=(mariadb-server rabbitmq-server uwsgi-plugin-python3 keystone placement-api glance-api neutron-server
  nova-api nova-conductor nova-scheduler python3-pymysql)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  [ "${HM9K_QUIET:-}" = 1 ] || echo "OpenStack packages present: ${PKGS[*]}"
  exit 0
fi
echo "[install-openstack] installing: ${missing[*]}" >&2
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
no=()
for q in keystone/configure_db keystone/create-admin-tenant keystone/register-endpoint; do no+=("keystone $q boolean false"); done
for q in nova/configure_db nova/configure_rabbit nova/configure_neutron nova/configure_placement nova/configure_ksat; do no+=("nova-common $q boolean false"); done
no+=("nova-api novaapi/configure_db boolean false" "nova-api nova/configure_api-endpoint boolean false")
for s in placement glance neutron; do
  for q in configure_db configure_rabbit configure_ksat; do no+=("$s-common $s/$q boolean false"); done
  no+=("$s-api $s/configure_api-endpoint boolean false")
done
no+=("neutron-common neutron/configure_nova boolean false")
printf '%s\n' "${no[@]}" | $SUDO debconf-set-selections
# Forbid service starts for the install only; put back whatever policy-rc.d was there.
policy=/usr/sbin/policy-rc.d
backup=""
if [ -e "$policy" ]; then backup=$(mktemp); $SUDO cp -p "$policy" "$backup"; fi
restore() { if [ -n "$backup" ]; then $SUDO cp -p "$backup" "$policy"; rm -f "$backup"; else $SUDO rm -f "$policy"; fi; }
trap restore EXIT
printf '#!/bin/sh\n# hm9k install-openstack.sh: no service starts during the install\nexit 101\n' | $SUDO tee "$policy" >/dev/null
$SUDO chmod 755 "$policy"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "OpenStack packages installed: ${PKGS[*]}"
