"""What every benchmark script shares: the database options, opening Odoo's registry, and
timing each query of one call."""

import inspect
import time


def add_database_arguments(parser):
    """-d/--database, --db-host, --db-port, --db-user, --db-password, --addons-path."""
    parser.add_argument("-d", "--database", required=True)
    parser.add_argument("--db-host", default="127.0.0.1")
    parser.add_argument("--db-port", default="5432")
    parser.add_argument("--db-user", default="odoo")
    parser.add_argument("--db-password", default="odoo")
    parser.add_argument(
        "--addons-path", default=None, help="Odoo's addons path, with this repository on it"
    )


def open_registry(args):
    """Configure Odoo from the options and return the database's registry."""
    import odoo

    odoo_args = [
        "--db_host",
        args.db_host,
        "--db_port",
        args.db_port,
        "--db_user",
        args.db_user,
        "--db_password",
        args.db_password,
        "--log-level",
        "warn",
    ]
    if args.addons_path:
        odoo_args += ["--addons-path", args.addons_path]
    odoo.tools.config.parse_config(odoo_args)
    return odoo.modules.registry.Registry(args.database)


def connect(args, database=None):
    """A psycopg2 connection in autocommit mode to ``database`` (default: the -d database),
    outside Odoo: for VACUUM, CREATE DATABASE and the like."""
    import psycopg2

    connection = psycopg2.connect(
        dbname=database or args.database,
        host=args.db_host,
        port=args.db_port,
        user=args.db_user,
        password=args.db_password,
    )
    connection.autocommit = True
    return connection


def profile_queries(env, call, module="crm_executive_dashboard"):
    """Each query run by ``call()`` (ORM caches emptied first): (seconds, method of ``module``
    that ran it, first words of the query), slowest first."""
    from odoo import sql_db

    timings = []
    execute = sql_db.Cursor.execute

    def timed(cursor, query, params=None, log_exceptions=True):
        started = time.perf_counter()
        try:
            return execute(cursor, query, params, log_exceptions)
        finally:
            elapsed = time.perf_counter() - started
            caller = next(
                (frame.function for frame in inspect.stack()[1:12] if module in frame.filename),
                "?",
            )
            text = " ".join(str(getattr(query, "code", query)).split())[:70]
            timings.append((elapsed, caller, text))

    sql_db.Cursor.execute = timed
    try:
        env.invalidate_all()
        call()
    finally:
        sql_db.Cursor.execute = execute
    return sorted(timings, reverse=True)
