#!/bin/sh
# Regenerates every fixture in this directory (run it from anywhere):
#
#	sh internal/certs/testdata/gen.sh
#
# Needs OpenSSL 3 with the legacy provider: the DES-, RC2- and RC4-based
# PBES1 schemes live there (they are exactly what old tooling, and AWS Lambda
# for its CLIENT_CERTIFICATE_TLS_AUTH secrets, still produce).
#
# Every encrypted key uses the password in PASSWORD below, except the
# *-unicode.pem keys, which use UNICODE_PASSWORD to exercise the UTF-8 to
# BMPString conversion of the PKCS#12 key derivation. Tests hard-code both.
#
# Certificates are valid for 100 years so the tests do not start failing one
# day. Regenerating replaces every key and certificate; no test depends on
# their exact bytes.
set -eu

PASSWORD='sluice-test-password'
UNICODE_PASSWORD='pässwörd-🔑'
DAYS=36500
LEGACY='-provider legacy -provider default' # word-split on purpose below

cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- Certificates: root CA -> intermediate CA -> client (RSA and EC) --------

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/ca.key"
openssl req -x509 -new -key "$tmp/ca.key" -sha256 -days "$DAYS" \
	-subj '/O=Sluice Test/CN=Sluice Test Root CA' \
	-addext 'basicConstraints=critical,CA:TRUE' \
	-addext 'keyUsage=critical,keyCertSign,cRLSign' \
	-out ca.pem

cat > "$tmp/int.ext" <<EXT
basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/int.key"
openssl req -new -key "$tmp/int.key" -subj '/O=Sluice Test/CN=Sluice Test Intermediate CA' -out "$tmp/int.csr"
openssl x509 -req -in "$tmp/int.csr" -CA ca.pem -CAkey "$tmp/ca.key" -set_serial 2 \
	-sha256 -days "$DAYS" -extfile "$tmp/int.ext" -out intermediate.pem

cat > "$tmp/client.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa-key-pkcs8.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec-key-pkcs8.pem
# A key that matches neither client certificate.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out other-rsa-key-pkcs8.pem

serial=10
for kt in rsa ec; do
	serial=$((serial + 1))
	openssl req -new -key "$kt-key-pkcs8.pem" -subj "/O=Sluice Test/CN=sluice-client-$kt" -out "$tmp/$kt.csr"
	openssl x509 -req -in "$tmp/$kt.csr" -CA intermediate.pem -CAkey "$tmp/int.key" -set_serial "$serial" \
		-sha256 -days "$DAYS" -extfile "$tmp/client.ext" -out "$tmp/$kt-leaf.pem"
	# The order AWS documents: client certificate, intermediates, root last.
	cat "$tmp/$kt-leaf.pem" intermediate.pem ca.pem > "$kt-chain.pem"
done

# --- Private keys in every supported (and some refused) form ----------------

# topk8 <key type> <fixture name> <password> <openssl pkcs8 options...>
# writes <key type>-key-<fixture name>.pem from <key type>-key-pkcs8.pem.
topk8() {
	kt=$1 name=$2 pass=$3
	shift 3
	openssl pkcs8 -topk8 -in "$kt-key-pkcs8.pem" -passout "pass:$pass" "$@" -out "$kt-key-$name.pem"
}

for kt in rsa ec; do
	# Unencrypted PKCS#1 ("RSA PRIVATE KEY") / SEC1 ("EC PRIVATE KEY").
	openssl pkey -in "$kt-key-pkcs8.pem" -traditional -out "$kt-key-traditional.pem"

	# PBES1 (PKCS#5 v1.5 and the PKCS#12 schemes OpenSSL files under -v1).
	topk8 "$kt" pbes1-sha1-3des "$PASSWORD" -v1 PBE-SHA1-3DES
	# shellcheck disable=SC2086
	topk8 "$kt" pbes1-sha1-2des "$PASSWORD" -v1 PBE-SHA1-2DES $LEGACY
	# shellcheck disable=SC2086
	topk8 "$kt" pbes1-md5-des "$PASSWORD" -v1 PBE-MD5-DES $LEGACY
	# shellcheck disable=SC2086
	topk8 "$kt" pbes1-sha1-des "$PASSWORD" -v1 PBE-SHA1-DES $LEGACY

	# PBES2 with PBKDF2 (OpenSSL 3's default PRF is hmacWithSHA256) or scrypt.
	topk8 "$kt" pbes2-aes256 "$PASSWORD" -v2 aes-256-cbc
	topk8 "$kt" pbes2-aes128-sha1 "$PASSWORD" -v2 aes-128-cbc -v2prf hmacWithSHA1
	topk8 "$kt" pbes2-aes192-sha224 "$PASSWORD" -v2 aes-192-cbc -v2prf hmacWithSHA224
	topk8 "$kt" pbes2-aes256-sha384 "$PASSWORD" -v2 aes-256-cbc -v2prf hmacWithSHA384
	topk8 "$kt" pbes2-aes256-sha512 "$PASSWORD" -v2 aes-256-cbc -v2prf hmacWithSHA512
	topk8 "$kt" pbes2-des3 "$PASSWORD" -v2 des3
	# shellcheck disable=SC2086
	topk8 "$kt" pbes2-des "$PASSWORD" -v2 des-cbc $LEGACY
	# Small scrypt cost so the tests stay fast (OpenSSL's default is N=16384).
	topk8 "$kt" pbes2-scrypt "$PASSWORD" -scrypt -scrypt_N 1024 -scrypt_r 8 -scrypt_p 1 -v2 aes-256-cbc
done

# Non-ASCII password: raw UTF-8 for PBKDF2, BMPString for the PKCS#12 KDF.
topk8 ec pbes1-sha1-3des-unicode "$UNICODE_PASSWORD" -v1 PBE-SHA1-3DES
topk8 ec pbes2-aes256-unicode "$UNICODE_PASSWORD" -v2 aes-256-cbc

# Refused on purpose: RC2/RC4 PBE and legacy OpenSSL PEM encryption.
# shellcheck disable=SC2086
topk8 rsa pbes1-sha1-rc2-40 "$PASSWORD" -v1 PBE-SHA1-RC2-40 $LEGACY
# shellcheck disable=SC2086
topk8 rsa pbes1-sha1-rc4-128 "$PASSWORD" -v1 PBE-SHA1-RC4-128 $LEGACY
# shellcheck disable=SC2086
topk8 rsa pbes1-md5-rc2 "$PASSWORD" -v1 PBE-MD5-RC2-64 $LEGACY
# shellcheck disable=SC2086
topk8 rsa pbes2-rc2 "$PASSWORD" -v2 rc2-cbc $LEGACY
openssl pkey -in rsa-key-pkcs8.pem -traditional -aes256 -passout "pass:$PASSWORD" -out rsa-key-legacy-aes256.pem

# SEC1 key preceded by the EC PARAMETERS block `openssl ecparam -genkey` emits.
{ openssl ecparam -name prime256v1; cat ec-key-traditional.pem; } > ec-key-sec1-with-params.pem
