#!/usr/bin/env bash
# Installs the Debian packages the stack and its tests need (those missing only).
# A Kamailio the operator already runs is never stopped nor disabled: only when this run
# installs the kamailio package itself, and the package's own service was not running
# before, is that freshly started system Kamailio (on 5060) stopped and disabled, since
# scripts/start.sh and the ims-kamailio unit run ours.
set -euo pipefail

DEB_PACKAGES=(kamailio kamailio-json-modules kamailio-extra-modules kamailio-utils-modules kamailio-tls-modules
              kamailio-presence-modules kamailio-xml-modules sip-tester
              baresip-core linphone-cli libxml2-utils openssl
              python3 make g++    # node-gyp builds better-sqlite3 where no prebuilt binary downloads
              chromium systemd    # the operator page test (headless) and systemd-analyze verify of the units
              prometheus          # promtool: checks the Grafana queries and alert rules in deploy/
              erlang-base erlang-diameter tshark   # Rf tests: Erlang's diameter is the test CDF, tshark decodes our ACRs
              dnsmasq-base)       # interdomain tests: the DNS server both test operators resolve through

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
service_active() { command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet kamailio 2>/dev/null; }

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "[install] Debian packages present"
  exit 0
fi

# what the operator had before this run decides what this run may undo
had_kamailio=0; installed kamailio && had_kamailio=1
was_active=0; service_active && was_active=1
had_prometheus=0; installed prometheus && had_prometheus=1

echo "[install] Debian packages: ${missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

if [ "$had_kamailio" = 0 ] && [ "$was_active" = 0 ] && service_active; then
  echo "[install] stopping and disabling the kamailio.service the package just started (ours runs from scripts/start.sh or ims-kamailio.service)"
  $SUDO systemctl stop kamailio || true
  $SUDO systemctl disable kamailio >/dev/null 2>&1 || true
elif [ "$was_active" = 1 ]; then
  echo "[install] kamailio.service was already running: left as it is (it holds port 5060 unless configured otherwise)"
fi
# the prometheus package is here for promtool; a server it started just now is not wanted
if [ "$had_prometheus" = 0 ] && command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  echo "[install] stopping and disabling the prometheus.service the package just started (only promtool is used)"
  $SUDO systemctl stop prometheus || true
  $SUDO systemctl disable prometheus >/dev/null 2>&1 || true
fi
