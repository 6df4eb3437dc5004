#!/bin/sh
# SPDX-License-Identifier: MIT
# make-leaf-certs.sh DIR [NAMES]: from the test CA of make-certs.sh (made in
# DIR first when DIR/ca.pem is missing), the certificates that tests of
# certificate uploads need. NAMES is a comma-separated list of DNS names
# (default "api.example.com,*.example.com"); the first is the common name.
#
#   int.pem int.key        an intermediate CA signed by the test CA
#   rsa.pem rsa.key        RSA-2048 leaf for NAMES, signed by int.pem
#   rsa.chain.pem          leaf, then int.pem (the order APIG wants)
#   rsa.rev.pem            int.pem, then the leaf (wrong order)
#   rsa.full.pem           leaf, int.pem, ca.pem (root included)
#   rsa.nolink.pem         leaf, then a certificate that did not issue it
#   ec.pem ec.key          ECDSA P-256 leaf for NAMES, signed by int.pem
#   ec.chain.pem           leaf, then int.pem
#   ed.pem ed.key          Ed25519 leaf (a key type APIG refuses)
#   expired.pem/.key       ended yesterday (+ expired.chain.pem)
#   future.pem/.key        starts tomorrow (+ future.chain.pem)
#   enc.key                rsa.key encrypted (passphrase "test")
#   other.key              an RSA key that matches no certificate
#   other.pem              another leaf for NAMES (other.key), same issuer
# Keys are PKCS#8 PEM, mode 0600. Never use any of this outside tests.
set -eu
dir=${1:?usage: make-leaf-certs.sh DIR [NAMES]}
names=${2:-api.example.com,*.example.com}
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$dir/ca.pem" ] || "$here/make-certs.sh" "$dir"
cd "$dir"
umask 077

cn=${names%%,*}
san=$(printf '%s' "$names" | sed 's/^/DNS:/; s/,/,DNS:/g')
day() { date -u -d "$1" +%Y%m%d%H%M%SZ; }

rm -rf ca.db
mkdir ca.db
: > ca.db/index
echo 1000 > ca.db/serial
cat > ca.cnf <<EOF
[ca]
default_ca = test
[test]
database = ca.db/index
serial = ca.db/serial
new_certs_dir = ca.db
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
[int_ext]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
[leaf_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $san
EOF

# sign CSR OUT ISSUER ISSUER_KEY EXTENSIONS START END
sign() {
  openssl ca -batch -config ca.cnf -notext -in "$1" -out "$2" -cert "$3" \
    -keyfile "$4" -extensions "$5" -startdate "$6" -enddate "$7" 2>/dev/null
}
# leaf NAME KEYALG START END: NAME.key + NAME.pem for NAMES, issued by int
leaf() {
  case $2 in
  rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
         -out "$1.key" 2>/dev/null ;;
  ec) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$1.key" 2>/dev/null ;;
  ed) openssl genpkey -algorithm ED25519 -out "$1.key" 2>/dev/null ;;
  esac
  openssl req -new -key "$1.key" -subj "/CN=$cn" -out "$1.csr" 2>/dev/null
  sign "$1.csr" "$1.pem" int.pem int.key leaf_ext "$3" "$4"
  rm -f "$1.csr"
}

now=$(day 'now - 1 hour')
later=$(day 'now + 30 days')
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
  -out int.key 2>/dev/null
openssl req -new -key int.key -subj "/CN=apig-sim test intermediate" \
  -out int.csr 2>/dev/null
sign int.csr int.pem ca.pem ca.key int_ext "$now" "$later"
rm -f int.csr

leaf rsa rsa "$now" "$later"
leaf ec ec "$now" "$later"
leaf ed ed "$now" "$later"
leaf other rsa "$now" "$later"
leaf expired rsa "$(day 'now - 30 days')" "$(day 'now - 1 day')"
leaf future rsa "$(day 'now + 1 day')" "$(day 'now + 30 days')"

cat rsa.pem int.pem > rsa.chain.pem
cat int.pem rsa.pem > rsa.rev.pem
cat rsa.pem int.pem ca.pem > rsa.full.pem
cat rsa.pem other.pem > rsa.nolink.pem
cat ec.pem int.pem > ec.chain.pem
cat expired.pem int.pem > expired.chain.pem
cat future.pem int.pem > future.chain.pem
openssl pkey -in rsa.key -aes256 -passout pass:test -out enc.key 2>/dev/null
rm -rf ca.db ca.cnf
chmod 0644 ./*.pem
