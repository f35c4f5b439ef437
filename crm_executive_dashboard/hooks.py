from odoo.tools import SQL

# the indexes the dashboard adds to tables of other modules (see models/crm_lead.py): Odoo
# drops a module's own tables and columns on uninstall, not these
DASHBOARD_INDEXES = (
    "crm_lead_date_closed_dashboard_idx",
    "crm_lead_forecast_dashboard_idx",
    "crm_lead_dashboard_idx",
    "crm_lead_counted_dashboard_idx",
    "crm_lead_ai_top_dashboard_idx",
    "mail_activity_lead_dashboard_idx",
    "mail_message_lead_activity_dashboard_idx",
    "mail_message_lead_activity_res_dashboard_idx",
)


def uninstall_hook(env):
    for name in DASHBOARD_INDEXES:
        env.cr.execute(SQL("DROP INDEX IF EXISTS %s", SQL.identifier(name)))
