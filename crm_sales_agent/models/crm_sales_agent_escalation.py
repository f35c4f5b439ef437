from odoo import _, api, fields, models

ESCALATION_RULES = [
    ("overdue_followup", "Overdue follow-up"),
    ("high_value", "High-value deal at risk"),
    ("high_score", "High AI score not contacted"),
]


class CrmSalesAgentEscalation(models.Model):
    _name = "crm.sales.agent.escalation"
    _description = "Sales Agent Escalation"
    _order = "date desc, id desc"
    _check_company_auto = True

    name = fields.Char(compute="_compute_name")
    lead_id = fields.Many2one(
        "crm.lead",
        string="Lead/Opportunity",
        required=True,
        index=True,
        ondelete="cascade",
        check_company=True,
    )
    rule = fields.Selection(ESCALATION_RULES, string="Rule", required=True)
    level = fields.Integer(string="Level", required=True, default=1)
    reason = fields.Text(string="Reason")
    from_user_id = fields.Many2one(
        "res.users",
        string="From",
        ondelete="set null",
        help="Salesperson of the lead when it was escalated.",
    )
    to_user_id = fields.Many2one(
        "res.users", string="To", required=True, ondelete="restrict", index=True
    )
    team_id = fields.Many2one("crm.team", string="Sales Team", ondelete="set null", index=True)
    company_id = fields.Many2one("res.company", string="Company", index=True)
    date = fields.Datetime(string="Date", required=True, default=fields.Datetime.now)
    state = fields.Selection(
        [("open", "Open"), ("resolved", "Resolved")],
        string="Status",
        required=True,
        default="open",
        index=True,
    )
    resolved_date = fields.Datetime(string="Resolved On", readonly=True)
    resolution = fields.Char(string="Resolution", readonly=True)
    activity_id = fields.Many2one("mail.activity", string="Activity", ondelete="set null")
    company_currency = fields.Many2one(related="lead_id.company_currency")
    expected_revenue = fields.Monetary(
        related="lead_id.expected_revenue", currency_field="company_currency"
    )
    lead_user_id = fields.Many2one(related="lead_id.user_id", string="Salesperson")
    lead_stage_id = fields.Many2one(related="lead_id.stage_id", string="Stage")

    def init(self):
        # one open escalation per lead, rule and level (the cron relies on it too)
        self.env.cr.execute(
            """CREATE UNIQUE INDEX IF NOT EXISTS crm_sales_agent_escalation_open_uniq
                   ON crm_sales_agent_escalation (lead_id, rule, level) WHERE state = 'open'"""
        )

    @api.depends("lead_id", "rule", "level")
    def _compute_name(self):
        rules = dict(self._fields["rule"]._description_selection(self.env))
        for escalation in self:
            escalation.name = _(
                "%(rule)s (level %(level)s): %(lead)s",
                rule=rules.get(escalation.rule, ""),
                level=escalation.level,
                lead=escalation.lead_id.display_name or "",
            )

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_resolve(self):
        self._resolve(_("Resolved by %(user)s", user=self.env.user.name))
        return True

    def action_open_lead(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "crm.lead",
            "res_id": self.lead_id.id,
            "view_mode": "form",
        }

    # ------------------------------------------------------------
    # BUSINESS
    # ------------------------------------------------------------

    def _resolve(self, resolution):
        """Close open escalations and cancel the manager activities they created."""
        escalations = self.filtered(lambda e: e.state == "open")
        if not escalations:
            return
        activities = escalations.sudo().activity_id
        escalations.write(
            {"state": "resolved", "resolved_date": fields.Datetime.now(), "resolution": resolution}
        )
        activities.unlink()
