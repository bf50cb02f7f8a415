#!/usr/bin/env bash
# Install what orionfs needs, where it is missing: libfuse + fusermount, attr (getfattr/setfattr),
# rsync (tests), rclone (benchmark peer), a virtual environment at .venv with the package and its
# test tools. Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v fusermount3 >/dev/null 2>&1 || command -v fusermount >/dev/null 2>&1 || need_apt+=(fuse3)
ldconfig -p 2>/dev/null | grep -q 'libfuse3.so.3' || need_apt+=(libfuse3-3)
ldconfig -p 2>/dev/null | grep -q 'libfuse.so.2' || need_apt+=(libfuse2)
command -v getfattr >/dev/null 2>&1 || need_apt+=(attr)
command -v rsync >/dev/null 2>&1 || need_apt+=(rsync)
command -v gio >/dev/null 2>&1 || need_apt+=(libglib2.0-bin)  # the desktop trash tests
command -v setpriv >/dev/null 2>&1 || need_apt+=(util-linux)  # tests acting as another uid
if [ "${ORIONFS_NO_RCLONE:-0}" != 1 ]; then
  command -v rclone >/dev/null 2>&1 || need_apt+=(rclone)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "bootstrap: installing system packages: ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.orionfs-installed
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
  echo "bootstrap: installing orionfs and its test tools into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi
echo "bootstrap: ready (.venv/bin/orionfs)"
