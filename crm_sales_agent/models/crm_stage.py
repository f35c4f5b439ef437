from odoo import fields, models


class CrmStage(models.Model):
    _inherit = "crm.stage"

    sales_agent_activity_ids = fields.One2many(
        "crm.sales.agent.stage.activity", "stage_id", string="Activities on Entry"
    )
    sales_agent_plan_id = fields.Many2one(
        "mail.activity.plan",
        string="Activity Plan on Entry",
        ondelete="set null",
        domain="[('res_model', '=', 'crm.lead')]",
        help="Activity plan launched by the sales agent when a lead or opportunity enters this "
        "stage, in addition to the activities listed here.",
    )
