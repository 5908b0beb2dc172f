#!/usr/bin/env bash
# A self-signed certificate for trying Berth out behind HAProxy.
# Usage: deploy/make-cert.sh OUTPUT.pem [HOSTNAME...]
# Writes the certificate and its key into one PEM, as HAProxy reads it.
set -euo pipefail
output=${1:?usage: make-cert.sh OUTPUT.pem [HOSTNAME...]}
shift
hosts=("${@:-registry.example.com}")
san=$(printf 'DNS:%s,' "${hosts[@]}")
san="${san}IP:127.0.0.1"
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 365 \
    -subj "/CN=${hosts[0]}" -addext "subjectAltName=${san}" \
    -keyout "$workdir/key.pem" -out "$workdir/cert.pem" 2>/dev/null
cat "$workdir/cert.pem" "$workdir/key.pem" > "$output"
chmod 600 "$output"
echo "wrote $output for ${hosts[*]}"
