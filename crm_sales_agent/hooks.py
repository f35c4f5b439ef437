from odoo.tools import SQL

from .models.crm_copilot_retrieval import FTS_INDEXES, OLD_FTS_INDEXES


def uninstall_hook(env):
    """Drop the copilot's full-text indexes: they are on tables of other modules (crm_lead,
    res_partner, mail_message), which Odoo does not drop with this module."""
    for name in FTS_INDEXES + OLD_FTS_INDEXES:
        env.cr.execute(SQL("DROP INDEX IF EXISTS %s", SQL.identifier(name)))
