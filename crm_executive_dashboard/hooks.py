from odoo.tools import SQL

from .models.crm_lead import AI_TABLE, AI_TRIGGER_FUNCTION, AI_TRIGGERS
from .models.crm_lead_stage_history import (
    GIVE_FUNCTION,
    HISTORY_FUNCTION,
    HISTORY_MOVE_TRIGGER,
    HISTORY_TRIGGER,
    LEAD_FUNCTION,
    LEAD_TRIGGER,
    MESSAGE_FUNCTION,
    MESSAGE_TRIGGER,
)

# the indexes the dashboard adds to tables of other modules (see models/crm_lead.py): Odoo
# drops a module's own tables and columns on uninstall, not these
DASHBOARD_INDEXES = (
    "crm_lead_date_closed_dashboard_idx",
    "crm_lead_forecast_dashboard_idx",
    "crm_lead_dashboard_idx",
    "crm_lead_active_dashboard_idx",
    "crm_lead_stage_open_dashboard_idx",
    "mail_activity_lead_open_dashboard_idx",
    "mail_message_lead_activity_dashboard_idx",
    "mail_message_lead_activity_res_dashboard_idx",
)


def uninstall_hook(env):
    for name in DASHBOARD_INDEXES:
        env.cr.execute(SQL("DROP INDEX IF EXISTS %s", SQL.identifier(name)))
    # the narrow AI table and the triggers that fill it (not an Odoo model: dropped here)
    for name in AI_TRIGGERS:
        env.cr.execute(SQL("DROP TRIGGER IF EXISTS %s ON crm_lead", SQL.identifier(name)))
    env.cr.execute(SQL("DROP FUNCTION IF EXISTS %s()", SQL.identifier(AI_TRIGGER_FUNCTION)))
    env.cr.execute(SQL("DROP TABLE IF EXISTS %s", SQL.identifier(AI_TABLE)))
    # the triggers that keep the stage history's lead creation dates (Odoo drops the table)
    env.cr.execute(SQL("DROP TRIGGER IF EXISTS %s ON crm_lead", SQL.identifier(LEAD_TRIGGER)))
    for name in (HISTORY_TRIGGER, HISTORY_MOVE_TRIGGER):
        env.cr.execute(
            SQL("DROP TRIGGER IF EXISTS %s ON crm_lead_stage_history", SQL.identifier(name))
        )
    env.cr.execute(
        SQL("DROP TRIGGER IF EXISTS %s ON mail_message", SQL.identifier(MESSAGE_TRIGGER))
    )
    for name in (LEAD_FUNCTION, HISTORY_FUNCTION, MESSAGE_FUNCTION):
        env.cr.execute(SQL("DROP FUNCTION IF EXISTS %s()", SQL.identifier(name)))
    env.cr.execute(
        SQL("DROP FUNCTION IF EXISTS %s(integer, integer[])", SQL.identifier(GIVE_FUNCTION))
    )
