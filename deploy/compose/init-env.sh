#!/usr/bin/env bash
# Writes the env files docker-compose.yml reads (chimera.env, postgres.env,
# grafana.env, postgres-exporter.env, beside this script) from their *.example,
# with fresh random passwords and a fresh Fernet key, consistent across the
# files. An env file that exists already is left as it is (run it again safely).
#   deploy/compose/init-env.sh
set -euo pipefail
cd "$(dirname "$0")"
umask 077

secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }
fernet_key() { python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'; }

if [ -e postgres.env ]; then
    # Reuse the passwords already given to PostgreSQL (they live in its volume).
    # shellcheck disable=SC1091
    source postgres.env
else
    POSTGRES_PASSWORD=$(secret)
    GRAFANA_DB_PASSWORD=$(secret)
    EXPORTER_DB_PASSWORD=$(secret)
fi

# write FILE NAME=VALUE...: FILE from FILE.example, each NAME's line replaced.
write() {
    local file=$1; shift
    if [ -e "$file" ]; then
        echo "kept $file (exists)"
        return
    fi
    local content
    content=$(cat "$file.example")
    local pair name value
    for pair in "$@"; do
        name=${pair%%=*}
        value=${pair#*=}
        content=$(printf '%s\n' "$content" | NAME="$name" VALUE="$value" python3 -c '
import os, re, sys
name, value = os.environ["NAME"], os.environ["VALUE"]
sys.stdout.write(re.sub(rf"^{name}=.*$", lambda m: f"{name}={value}", sys.stdin.read(), flags=re.M))')
    done
    printf '%s\n' "$content" > "$file"
    echo "wrote $file"
}

write postgres.env "POSTGRES_PASSWORD=$POSTGRES_PASSWORD" \
    "GRAFANA_DB_PASSWORD=$GRAFANA_DB_PASSWORD" "EXPORTER_DB_PASSWORD=$EXPORTER_DB_PASSWORD"
write chimera.env "DATABASE_URL=postgresql://chimera:$POSTGRES_PASSWORD@postgres:5432/chimera" \
    "NOTIFIER_SECRET_KEYS=$(fernet_key)"
write grafana.env "GF_SECURITY_ADMIN_PASSWORD=$(secret)" "CHIMERA_PG_PASSWORD=$GRAFANA_DB_PASSWORD"
write postgres-exporter.env "DATA_SOURCE_PASS=$EXPORTER_DB_PASSWORD"
