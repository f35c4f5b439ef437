from odoo import _, api, fields, models
from odoo.exceptions import ValidationError


class CrmCampaignCost(models.Model):
    _name = "crm.campaign.cost"
    _description = "Marketing Cost"
    _order = "date_from desc, id desc"
    _check_company_auto = True

    # Description
    name = fields.Char(string="Description")
    campaign_id = fields.Many2one("utm.campaign", string="Campaign", index=True, ondelete="cascade")
    source_id = fields.Many2one("utm.source", string="Source", index=True, ondelete="cascade")
    medium_id = fields.Many2one("utm.medium", string="Medium", index=True, ondelete="cascade")
    # Period
    date_from = fields.Date(string="From", required=True)
    date_to = fields.Date(string="To", required=True)
    # Amount
    amount = fields.Monetary(string="Cost", required=True, currency_field="currency_id")
    company_id = fields.Many2one(
        "res.company", string="Company", required=True, default=lambda self: self.env.company
    )
    currency_id = fields.Many2one(
        "res.currency",
        string="Currency",
        required=True,
        default=lambda self: self.env.company.currency_id,
    )

    _sql_constraints = [
        ("amount_positive", "CHECK(amount >= 0)", "A cost cannot be negative."),
        ("period_order", "CHECK(date_from <= date_to)", "The period must end after it starts."),
    ]

    @api.constrains("campaign_id", "source_id", "medium_id")
    def _check_utm(self):
        for cost in self:
            if not (cost.campaign_id or cost.source_id or cost.medium_id):
                raise ValidationError(
                    _("A cost belongs to a campaign, a source or a medium: set at least one.")
                )
