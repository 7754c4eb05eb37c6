#!/bin/bash
# Run once by the postgres image when its data volume is first initialised
# (/docker-entrypoint-initdb.d): the read-only role Grafana's PostgreSQL data
# source uses, and the monitoring role of postgres-exporter. Passwords come
# from deploy/compose/postgres.env. The tables themselves are made by the
# `migrate` service (`chimera migrate`), as the `chimera` owner.
set -euo pipefail
: "${GRAFANA_DB_PASSWORD:?set GRAFANA_DB_PASSWORD in deploy/compose/postgres.env}"
: "${EXPORTER_DB_PASSWORD:?set EXPORTER_DB_PASSWORD in deploy/compose/postgres.env}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v grafana_password="$GRAFANA_DB_PASSWORD" -v exporter_password="$EXPORTER_DB_PASSWORD" <<'SQL'
-- Reads every table (PostgreSQL 14+ built-in role). Narrow it to the figure
-- tables with plain GRANT SELECT if API key hashes and sealed channel secrets
-- should stay out of Grafana's reach.
CREATE ROLE grafana_ro LOGIN PASSWORD :'grafana_password';
GRANT pg_read_all_data TO grafana_ro;
ALTER ROLE grafana_ro SET statement_timeout = '30s';
CREATE ROLE postgres_exporter LOGIN PASSWORD :'exporter_password';
GRANT pg_monitor TO postgres_exporter;
SQL
