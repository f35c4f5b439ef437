"""17.0.2.1.0: the crons are bound to the models that own them, and the agent has a go-live
date per company (the upgrade date, so that the upgrade floods nobody)."""

from odoo import SUPERUSER_ID, api, fields

CRONS = {
    "ir_cron_sales_agent_followup": ("crm.sales.agent.followup", "model._cron_create_followups()"),
    "ir_cron_sales_agent_escalate": ("crm.sales.agent.lead.state", "model._cron_assess()"),
}


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    # the cron records are noupdate: their model and code are written here
    for xmlid, (model, code) in CRONS.items():
        cron = env.ref("crm_sales_agent.%s" % xmlid, raise_if_not_found=False)
        if cron:
            cron.write({"model_id": env["ir.model"]._get_id(model), "code": code})
    # the column was added with today's date as default; a company without one gets it too
    companies = (
        env["res.company"]
        .with_context(active_test=False)
        .search([("sales_agent_go_live_date", "=", False)])
    )
    if companies:
        companies.write({"sales_agent_go_live_date": fields.Date.context_today(companies[:1])})
