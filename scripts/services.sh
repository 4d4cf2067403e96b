#!/usr/bin/env bash
# Bring up what the tests need on this machine: MariaDB and PostgreSQL running, a
# SELECT-only MySQL account for the test databases, and Supabase's roles in PostgreSQL.
# Starts the servers when stopped, installs them from apt when missing (as root).
set -euo pipefail

MYSQL_RO_USER=${HYBRIDWB_TEST_MYSQL_RO_USER:-hybridwb_ro}
MYSQL_RO_PASSWORD=${HYBRIDWB_TEST_MYSQL_RO_PASSWORD:-hybridwb_ro_pw}
# SELECT and nothing else (no SHOW VIEW), like a real production read account
MYSQL_SEL_USER=${HYBRIDWB_TEST_MYSQL_SEL_USER:-hybridwb_sel}
MYSQL_SEL_PASSWORD=${HYBRIDWB_TEST_MYSQL_SEL_PASSWORD:-hybridwb_sel_pw}

say() { echo "services: $*"; }
need_root() {
  if [ "$(id -u)" != 0 ]; then
    say "$1 is missing and I am not root; install it (apt-get install $2) and run me again." >&2
    exit 1
  fi
}
apt_install() {
  need_root "$1" "$2"
  say "installing $2 from apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "$2" >/dev/null
}
wait_for() { # command, what
  for _ in $(seq 1 60); do
    if eval "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  say "$2 did not come up in 30 s" >&2
  exit 1
}

# -- MariaDB ---------------------------------------------------------------------------
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || apt_install MariaDB mariadb-server
if ! mysqladmin -uroot --protocol=tcp -h127.0.0.1 ping >/dev/null 2>&1; then
  say "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  if [ ! -d /var/lib/mysql/mysql ]; then mariadb-install-db --user=mysql >/dev/null; fi
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  wait_for "mysqladmin -uroot --protocol=tcp -h127.0.0.1 ping" MariaDB
fi
mysql -uroot --protocol=tcp -h127.0.0.1 <<SQL
CREATE USER IF NOT EXISTS '${MYSQL_RO_USER}'@'%' IDENTIFIED BY '${MYSQL_RO_PASSWORD}';
CREATE USER IF NOT EXISTS '${MYSQL_RO_USER}'@'localhost' IDENTIFIED BY '${MYSQL_RO_PASSWORD}';
GRANT SELECT, SHOW VIEW ON \`hybridwb\_%\`.* TO '${MYSQL_RO_USER}'@'%';
GRANT SELECT, SHOW VIEW ON \`hybridwb\_%\`.* TO '${MYSQL_RO_USER}'@'localhost';
CREATE USER IF NOT EXISTS '${MYSQL_SEL_USER}'@'%' IDENTIFIED BY '${MYSQL_SEL_PASSWORD}';
CREATE USER IF NOT EXISTS '${MYSQL_SEL_USER}'@'localhost' IDENTIFIED BY '${MYSQL_SEL_PASSWORD}';
GRANT SELECT ON \`hybridwb\_%\`.* TO '${MYSQL_SEL_USER}'@'%';
GRANT SELECT ON \`hybridwb\_%\`.* TO '${MYSQL_SEL_USER}'@'localhost';
CREATE DATABASE IF NOT EXISTS hybridwb_demo CHARACTER SET utf8mb4;
SQL
# named time zones (Europe/Berlin, Asia/Seoul) need the server's tz tables: load them once
if [ "$(mysql -uroot --protocol=tcp -h127.0.0.1 -NBe 'SELECT COUNT(*) FROM mysql.time_zone_name')" = 0 ] \
  && [ -d /usr/share/zoneinfo ]; then
  say "loading MariaDB's time zone tables from /usr/share/zoneinfo"
  mariadb-tzinfo-to-sql /usr/share/zoneinfo 2>/dev/null | mysql -uroot --protocol=tcp -h127.0.0.1 mysql
fi
say "MariaDB ready (read-only account ${MYSQL_RO_USER}, SELECT-only account ${MYSQL_SEL_USER})"

# -- PostgreSQL ------------------------------------------------------------------------
if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then apt_install PostgreSQL postgresql; fi
PGVER=$(ls /etc/postgresql | sort -n | tail -1)
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  say "starting PostgreSQL ${PGVER}"
  pg_ctlcluster --skip-systemctl-redirect "$PGVER" main start
  wait_for "pg_isready -h 127.0.0.1 -p 5432 -q" PostgreSQL
fi
HBA=/etc/postgresql/$PGVER/main/pg_hba.conf
if ! psql -U postgres -h 127.0.0.1 -tAc 'select 1' >/dev/null 2>&1; then
  need_root "trust auth for local tests" postgresql
  say "allowing trust auth on 127.0.0.1 for the tests"
  sed -i '1i host all all 127.0.0.1/32 trust' "$HBA"
  pg_ctlcluster --skip-systemctl-redirect "$PGVER" main reload
fi
psql -q -U postgres -h 127.0.0.1 -v ON_ERROR_STOP=1 <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN CREATE ROLE service_role NOLOGIN BYPASSRLS; END IF;
END $$;
SQL
say "PostgreSQL ready (Supabase roles anon, authenticated, service_role)"

# -- Chromium for the browser tests (Debian's package; Playwright never downloads one) ---
if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi "noto sans cjk"; then
  if [ "$(id -u)" = 0 ]; then
    say "installing chromium and Korean fonts from apt for the browser tests"
    export DEBIAN_FRONTEND=noninteractive
    (apt-get update -qq >/dev/null && apt-get install -y -qq chromium fonts-noto-cjk >/dev/null) \
      || say "could not install chromium; the browser tests will be skipped and say why"
  else
    say "chromium is missing and I am not root; the browser tests will be skipped (apt-get install chromium)"
  fi
fi

# -- strace and a C compiler for two tests: the store's durability (the kernel's order of
# write, fsync and link) and two hosts with skewed clocks (an LD_PRELOAD clock shim) --------
for tool in strace gcc; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      say "installing $tool from apt for the tests that need it"
      export DEBIAN_FRONTEND=noninteractive
      (apt-get update -qq >/dev/null && apt-get install -y -qq "$tool" >/dev/null) \
        || say "could not install $tool; the tests that need it will be skipped and say why"
    else
      say "$tool is missing and I am not root; the tests that need it will be skipped (apt-get install $tool)"
    fi
  fi
done
