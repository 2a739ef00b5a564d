#!/usr/bin/env bash
# Makes a local certificate authority and a server certificate for the SIP domain, once:
# the certificates SIP over TLS (Kamailio) and XCAP over HTTPS (the AS) use when the operator
# has configured none of their own. Files already there are kept, so clients that were told
# to trust the CA go on trusting it across restarts.
#
#   scripts/tls-setup.sh <dir> <domain>
#
# Writes into <dir> (mode 700): ca.pem (give it to clients), ca.key, server.pem, server.key
# (keys mode 600). The server certificate names the domain, localhost and 127.0.0.1. A
# certificate of another domain (SIP_DOMAIN changed) is made again with the same CA.
set -euo pipefail
dir=${1:?usage: tls-setup.sh <dir> <domain>}
domain=${2:?usage: tls-setup.sh <dir> <domain>}
umask 077
mkdir -p "$dir"
chmod 700 "$dir"

if [ ! -s "$dir/ca.pem" ] || [ ! -s "$dir/ca.key" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" \
    -subj "/O=ims-as local CA/CN=ims-as local CA $(hostname -s 2>/dev/null || echo host)" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  rm -f "$dir/server.pem" "$dir/server.key"
  echo "[tls] new local CA: $dir/ca.pem" >&2
fi

# the domain the certificate was made for: another domain means a new certificate
if [ -s "$dir/server.pem" ] && ! openssl x509 -in "$dir/server.pem" -noout -checkhost "$domain" 2>/dev/null | grep -q 'does match'; then
  rm -f "$dir/server.pem" "$dir/server.key"
fi

if [ ! -s "$dir/server.pem" ] || [ ! -s "$dir/server.key" ]; then
  ext=$(mktemp)
  trap 'rm -f "$ext" "$dir/server.csr"' EXIT
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=DNS:$domain,DNS:localhost,IP:127.0.0.1,DNS:127.0.0.1" > "$ext"
  openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$dir/server.key" -out "$dir/server.csr" -subj "/CN=$domain" 2>/dev/null
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 825 -sha256 -extfile "$ext" -out "$dir/server.pem" 2>/dev/null
  echo "[tls] new server certificate for $domain: $dir/server.pem" >&2
fi
chmod 600 "$dir"/*.key
chmod 644 "$dir/ca.pem" "$dir/server.pem"
