#!/bin/sh
# SPDX-License-Identifier: MIT
# make-certs.sh DIR: a throw-away test CA and a server certificate for
# 127.0.0.1 and localhost, for apig-sim (--tls-cert/--tls-key) and its
# clients (curl --cacert DIR/ca.pem, certbind tls.ca_file).
#   DIR/ca.pem ca.key server.pem server.key
# Keys are written 0600. Never use these outside tests and demos.
set -eu
dir=${1:?usage: make-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout ca.key -out ca.pem -days 30 -subj "/CN=apig-sim test CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
cat > server.ext <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
EXT
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
  -out server.pem -days 30 -extfile server.ext 2>/dev/null
rm -f server.csr server.ext ca.srl
chmod 0644 ca.pem server.pem
