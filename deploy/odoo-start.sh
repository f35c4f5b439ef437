#!/bin/bash
# Start Odoo, installing the suite only when the database does not have it yet.
#
#   bash deploy/odoo-start.sh COMMAND...      e.g. /entrypoint.sh odoo   (docker-compose.yml)
#
# Runs COMMAND -d $ODOO_DATABASE, adding -i $ODOO_INIT_MODULES only if one of those modules is
# not installed in that database (no database, an empty one, or a first start that stopped
# half-way). A restart therefore does not re-run the installation (nor reset settings from
# data files). The database connection is read from the Odoo configuration file ($ODOO_RC,
# the official image sets /etc/odoo/odoo.conf). Needs python3 with psycopg2, which every
# Odoo image has.
set -euo pipefail

: "${ODOO_RC:=/etc/odoo/odoo.conf}"
: "${ODOO_DATABASE:=odoo}"
: "${ODOO_INIT_MODULES:=llm_lead_scoring,crm_executive_dashboard,crm_sales_agent}"
export ODOO_RC ODOO_DATABASE ODOO_INIT_MODULES

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]  (e.g. /entrypoint.sh odoo)" >&2
    exit 2
fi

# prints the modules still to install (comma-separated, empty when all are installed);
# exits 1 when PostgreSQL stays unreachable for 60 s
missing=$(python3 - <<'PY'
import configparser, os, sys, time

import psycopg2

conf = configparser.ConfigParser(interpolation=None)
conf.read(os.environ["ODOO_RC"])
opt = conf["options"] if conf.has_section("options") else {}


def value(key, default):
    v = (opt.get(key) or "").strip()
    return default if not v or v == "False" else v


params = dict(
    host=value("db_host", "db"),
    port=value("db_port", "5432"),
    user=value("db_user", "odoo"),
    password=value("db_password", "odoo"),
    dbname=os.environ["ODOO_DATABASE"],
    connect_timeout=5,
)
wanted = [m.strip() for m in os.environ["ODOO_INIT_MODULES"].split(",") if m.strip()]
deadline = time.time() + 60
while True:
    try:
        conn = psycopg2.connect(**params)
        break
    except psycopg2.OperationalError as e:
        if "does not exist" in str(e):  # first start: no database yet
            print(",".join(wanted))
            sys.exit(0)
        if time.time() > deadline:
            print(f"odoo-start: PostgreSQL unreachable: {e}", file=sys.stderr)
            sys.exit(1)
        time.sleep(2)
with conn, conn.cursor() as cr:
    cr.execute("SELECT to_regclass('ir_module_module')")
    if cr.fetchone()[0] is None:  # database created but never initialised
        installed = set()
    else:
        cr.execute(
            "SELECT name FROM ir_module_module WHERE name = ANY(%s) AND state = 'installed'",
            (wanted,),
        )
        installed = {name for (name,) in cr.fetchall()}
conn.close()
print(",".join(m for m in wanted if m not in installed))
PY
)

if [ -n "$missing" ]; then
    echo "odoo-start: installing $missing into database $ODOO_DATABASE" >&2
    exec "$@" -d "$ODOO_DATABASE" -i "$missing"
else
    echo "odoo-start: database $ODOO_DATABASE already has the suite; starting without -i" >&2
    exec "$@" -d "$ODOO_DATABASE"
fi
