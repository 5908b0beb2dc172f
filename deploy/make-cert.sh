#!/usr/bin/env bash
# A throwaway certificate authority and one certificate for Berth's edge,
# for trying Berth out with TLS verification on.
#
# Usage: deploy/make-cert.sh OUTPUT_DIR [NAME...]
#   NAME defaults to registry.example.com docker.example.com; localhost and
#   127.0.0.1 are always included.
# Writes OUTPUT_DIR/ca.crt (the CA clients trust), OUTPUT_DIR/ca.key (keep
# it or delete it) and OUTPUT_DIR/berth.pem (certificate chain and key, as
# HAProxy reads it; mode 0600), then prints how to make clients trust the CA.
set -euo pipefail
output=${1:?usage: make-cert.sh OUTPUT_DIR [NAME...]}
shift
names=("${@}")
if [ ${#names[@]} -eq 0 ]; then
    names=(registry.example.com docker.example.com)
fi
mkdir -p "$output"
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

san=""
for name in "${names[@]}" localhost; do
    san="${san}DNS:${name},"
done
san="${san}IP:127.0.0.1"

openssl req -x509 -newkey rsa:2048 -nodes -days 825 \
    -subj "/CN=Berth throwaway CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$output/ca.key" -out "$output/ca.crt" 2>/dev/null
chmod 600 "$output/ca.key"

openssl req -newkey rsa:2048 -nodes -subj "/CN=${names[0]}" \
    -keyout "$workdir/edge.key" -out "$workdir/edge.csr" 2>/dev/null
cat > "$workdir/edge.ext" <<EOF
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=${san}
EOF
openssl x509 -req -in "$workdir/edge.csr" -CA "$output/ca.crt" -CAkey "$output/ca.key" \
    -CAcreateserial -days 825 -extfile "$workdir/edge.ext" \
    -out "$workdir/edge.crt" 2>/dev/null
rm -f "$output/ca.srl"

(umask 077 && cat "$workdir/edge.crt" "$output/ca.crt" "$workdir/edge.key" > "$output/berth.pem")

cat <<EOF
Wrote $output/berth.pem for ${names[*]} localhost 127.0.0.1,
signed by the throwaway CA $output/ca.crt.

Make clients trust the CA (NAME is the registry's name, with :PORT unless 443):
  docker:          sudo mkdir -p /etc/docker/certs.d/NAME && sudo cp $output/ca.crt /etc/docker/certs.d/NAME/ca.crt
  podman, skopeo:  sudo mkdir -p /etc/containers/certs.d/NAME && sudo cp $output/ca.crt /etc/containers/certs.d/NAME/ca.crt
  curl:            curl --cacert $output/ca.crt https://NAME/v2/
  a browser:       import $output/ca.crt as an authority, or accept the warning once
EOF
