#!/usr/bin/env bash
# What `pip install mysqlclient` needs to build (it ships no Linux wheel): the MariaDB
# client library headers, pkg-config and a C compiler. Installs them from apt when missing.
set -euo pipefail
if pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null; then
  if command -v cc >/dev/null 2>&1; then exit 0; fi
fi
if [ "$(id -u)" != 0 ]; then
  echo "build_deps: mysqlclient needs: apt-get install libmariadb-dev pkg-config build-essential" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq libmariadb-dev pkg-config build-essential >/dev/null
