from odoo import fields, models


class CrmSalesAgentStageActivity(models.Model):
    _name = "crm.sales.agent.stage.activity"
    _description = "Sales Agent: Activity on Stage Entry"
    _order = "stage_id, sequence, id"

    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    stage_id = fields.Many2one(
        "crm.stage",
        string="Stage",
        required=True,
        index=True,
        ondelete="cascade",
        help="When a lead or opportunity enters this stage, the activity is planned for its "
        "salesperson.",
    )
    activity_type_id = fields.Many2one(
        "mail.activity.type",
        string="Activity Type",
        required=True,
        ondelete="restrict",
        domain="['|', ('res_model', '=', False), ('res_model', '=', 'crm.lead')]",
    )
    summary = fields.Char(string="Summary", required=True, translate=True)
    days = fields.Integer(
        string="Due in (working days)",
        default=1,
        help="Deadline in working days of the company's calendar after the stage was entered "
        "(0: the same day, or the next working day).",
    )
    note = fields.Html(string="Note", translate=True)

    _sql_constraints = [
        ("days_positive", "CHECK(days >= 0)", "The delay in working days cannot be negative."),
    ]
