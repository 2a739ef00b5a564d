#!/usr/bin/env bash
# Prints a local Kamailio config: the installation's secret, the AS's HTTP address, then an
# include of the product config. The secret is written once: #!substdefs defines ISC_SECRET
# and also puts it wherever the word ISC_SECRET stands inside a string read after it, here
# the password of AS_HTTPCON. A secret with characters the substitution could misread
# (anything but letters, digits and ._~-) is written into both defines instead.
#   usage: kamailio-local-cfg.sh SECRET AS_HOST:PORT PRODUCT_CFG [COMMENT]
set -euo pipefail
secret=$1 as_addr=$2 product=$3 comment=${4:-the installation\'s secret, then the product config}
echo '#!KAMAILIO'
echo "# $comment"
if [[ $secret =~ ^[A-Za-z0-9._~-]+$ ]]; then
  echo "#!substdefs \"/ISC_SECRET/$secret/g\""
  echo "#!define AS_HTTPCON \"as=>http://kamailio:ISC_SECRET@$as_addr;timeout=2\""
else
  echo "#!define ISC_SECRET \"$secret\""
  echo "#!define AS_HTTPCON \"as=>http://kamailio:$secret@$as_addr;timeout=2\""
fi
echo "include_file \"$product\""
