#!/bin/sh
# Prepares the Garage of compose.yaml for Pawfile: a one-node layout, the documents bucket and
# the backup bucket, and two access keys, each allowed on its own bucket only (read and write, never
# owner). Safe to run again: it skips what is already there and re-applies the permissions.
# When the backups go to another store (PAWFILE_BACKUP_S3_ENDPOINT is not this Garage's
# GARAGE_INIT_ENDPOINT), only the documents bucket and key are made here.
# compose.yaml runs it as the one-shot service garage-init; it needs the garage binary, the node's
# config file and metadata folder (for the node id), and the environment below.
set -eu

: "${GARAGE_RPC_SECRET:?is not set}"
: "${PAWFILE_S3_BUCKET:?is not set}"
: "${PAWFILE_S3_ACCESS_KEY_ID:?is not set}"
: "${PAWFILE_S3_SECRET_ACCESS_KEY:?is not set}"
: "${PAWFILE_BACKUP_S3_BUCKET:?is not set}"
: "${PAWFILE_BACKUP_S3_ACCESS_KEY_ID:?is not set}"
: "${PAWFILE_BACKUP_S3_SECRET_ACCESS_KEY:?is not set}"
GARAGE=${GARAGE:-garage}
GARAGE_INIT_ENDPOINT=${GARAGE_INIT_ENDPOINT:-http://garage:3900}
CAPACITY=${GARAGE_CAPACITY:-100G}

say() { echo "garage-init: $*"; }

tries=0
until "$GARAGE" status >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    say "Garage does not answer; its log says why" >&2
    "$GARAGE" status >&2 || true
    exit 1
  fi
  sleep 1
done

if "$GARAGE" layout show | grep -q '^Current cluster layout version: 0$'; then
  node=$("$GARAGE" node id -q | cut -d@ -f1)
  "$GARAGE" layout assign -z dc1 -c "$CAPACITY" "$node" >/dev/null
  "$GARAGE" layout apply --version 1 >/dev/null
  say "layout: this node holds the data ($CAPACITY)"
fi

# A key made elsewhere is imported, so its id and secret can live in .env beside the other settings.
key() { # name id secret
  if "$GARAGE" key info "$2" >/dev/null 2>&1; then
    say "key $1 ($2) exists"
  else
    "$GARAGE" key import --yes -n "$1" "$2" "$3" >/dev/null
    say "key $1 ($2) imported"
  fi
}

bucket() { # name key-id
  if "$GARAGE" bucket info "$1" >/dev/null 2>&1; then
    say "bucket $1 exists"
  else
    "$GARAGE" bucket create "$1" >/dev/null
    say "bucket $1 created"
  fi
  "$GARAGE" bucket allow --read --write "$1" --key "$2" >/dev/null
}

key pawfile-documents "$PAWFILE_S3_ACCESS_KEY_ID" "$PAWFILE_S3_SECRET_ACCESS_KEY"
bucket "$PAWFILE_S3_BUCKET" "$PAWFILE_S3_ACCESS_KEY_ID"
if [ "${PAWFILE_BACKUP_S3_ENDPOINT:-$GARAGE_INIT_ENDPOINT}" != "$GARAGE_INIT_ENDPOINT" ]; then
  say "backups go to $PAWFILE_BACKUP_S3_ENDPOINT: no backup bucket or key here"
  say "done"
  exit 0
fi
key pawfile-backups "$PAWFILE_BACKUP_S3_ACCESS_KEY_ID" "$PAWFILE_BACKUP_S3_SECRET_ACCESS_KEY"
bucket "$PAWFILE_BACKUP_S3_BUCKET" "$PAWFILE_BACKUP_S3_ACCESS_KEY_ID"

# Each key must reach its own bucket and nothing else: refuse to finish if a key sees the other bucket
# (for example a key reused, or allowed by hand).
for pair in "$PAWFILE_S3_ACCESS_KEY_ID $PAWFILE_BACKUP_S3_BUCKET" "$PAWFILE_BACKUP_S3_ACCESS_KEY_ID $PAWFILE_S3_BUCKET"; do
  set -- $pair
  if "$GARAGE" key info "$1" | grep -q "[[:space:]]$2[[:space:]]*\$"; then
    say "key $1 may use bucket $2: it must not; run: garage bucket deny --read --write --owner $2 --key $1" >&2
    exit 1
  fi
done
say "done"
