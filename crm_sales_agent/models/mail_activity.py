from odoo import fields, models

AGENT_RULES = [
    ("new_lead", "New Lead"),
    ("stage", "Stage Entry"),
    ("followup", "Follow-up"),
    ("next_action", "Next Action"),
    ("escalation", "Escalation"),
]


class MailActivity(models.Model):
    _inherit = "mail.activity"

    sales_agent_rule = fields.Selection(
        AGENT_RULES,
        string="Sales Agent Rule",
        readonly=True,
        copy=False,
        help="Set when the CRM sales agent planned this activity.",
    )
