"""What every benchmark script shares: the database options and opening Odoo's registry."""


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
