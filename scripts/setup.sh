#!/usr/bin/env bash
# One command from a fresh machine to a mounted Orion: installs everything, starts the local
# Orion-compatible server with sample data in ./orion-data, and mounts it at ./mnt.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
data="${ORIONFS_DATA:-$PWD/orion-data}"
mnt="${ORIONFS_MOUNT:-$PWD/mnt}"
mkdir -p "$mnt"
if mountpoint -q "$mnt"; then
  echo "setup: $mnt is already mounted"
else
  .venv/bin/orionfs mount --local "$data" "$mnt"
fi
cat <<MSG

orionfs is mounted at $mnt (local server data in $data).
Try:
  ls -l $mnt/project/1/user/*/            # your My Data
  find $mnt/project/1 | head
  cat $mnt/project/1/user/*/README.txt
  getfattr -d $mnt/project/1/user/*/README.txt
  cp /etc/hostname $mnt/project/1/user/*/
When done:  .venv/bin/orionfs unmount $mnt   (this also stops the local server)
MSG
