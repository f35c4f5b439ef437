from odoo import _, api, fields, models
from odoo.exceptions import AccessError

from ..models.crm_sales_agent_escalation import ESCALATION_RULES
from ..models.mail_activity import AGENT_RULES


class CrmSalesAgentDryRun(models.TransientModel):
    """What the sales agent's next run would create, counted per rule and per salesperson,
    computed by the crons' own code in read-only mode: no lock, no write, no LLM call."""

    _name = "crm.sales.agent.dry.run"
    _description = "Sales Agent: Dry Run"

    company_id = fields.Many2one("res.company", string="Company", required=True, readonly=True)
    go_live_date = fields.Date(related="company_id.sales_agent_go_live_date")
    date = fields.Datetime(string="Computed On", readonly=True)
    line_ids = fields.One2many("crm.sales.agent.dry.run.line", "dry_run_id", readonly=True)
    activity_count = fields.Integer(string="Activities", readonly=True)
    escalation_count = fields.Integer(string="Escalations", readonly=True)

    @api.model
    def _action_preview(self, company):
        """Compute the dry run of ``company`` and open it. CRM managers only."""
        if not self.env.user.has_group("sales_team.group_sale_manager"):
            raise AccessError(_("Only CRM managers can preview the sales agent's next run."))
        company.check_access_rule("read")
        wizard = self.create({"company_id": company.id})
        wizard._compute_preview()
        return {
            "type": "ir.actions.act_window",
            "name": _("Sales Agent: Next Run"),
            "res_model": self._name,
            "res_id": wizard.id,
            "view_mode": "form",
            "target": "new",
        }

    @api.model
    def _action_preview_current_company(self):
        """The Escalations menu's entry: the dry run of the current company."""
        return self._action_preview(self.env.company)

    def _compute_preview(self):
        """Run both crons' rules on the company's leads in dry-run mode (as the superuser,
        like the crons, in the cron user's language and with its default company)."""
        self.ensure_one()
        company = self.company_id.sudo()
        root = self.env.ref("base.user_root")
        env = self.env(user=root.id, su=True)
        cron_company = root.company_id
        env = env(context=dict(env.context, allowed_company_ids=cron_company.ids))
        report = []
        followup = env["crm.sales.agent.followup"]._sales_agent_with_lang()
        followup._sales_agent_followup_run(companies=company.with_env(env), report=report)
        state = env["crm.sales.agent.lead.state"]._sales_agent_with_lang()
        state._sales_agent_assess_run(companies=company.with_env(env), report=report)
        counts = {}
        for item in report:
            key = (item["kind"], item["rule"], item["user_id"] or False)
            counts[key] = counts.get(key, 0) + 1
        labels = dict(AGENT_RULES + ESCALATION_RULES)
        self.write(
            {
                "date": fields.Datetime.now(),
                "activity_count": sum(n for key, n in counts.items() if key[0] == "activity"),
                "escalation_count": sum(n for key, n in counts.items() if key[0] == "escalation"),
                "line_ids": [(5, 0, 0)]
                + [
                    (
                        0,
                        0,
                        {
                            "kind": kind,
                            "rule": rule,
                            "rule_label": labels.get(rule, rule),
                            "user_id": user_id,
                            "count": count,
                        },
                    )
                    for (kind, rule, user_id), count in sorted(
                        counts.items(), key=lambda item: (item[0][0], item[0][1], -item[1])
                    )
                ],
            }
        )

    def action_refresh(self):
        self.ensure_one()
        return self._action_preview(self.company_id)


class CrmSalesAgentDryRunLine(models.TransientModel):
    _name = "crm.sales.agent.dry.run.line"
    _description = "Sales Agent: Dry Run Line"
    _order = "kind, rule, count desc, id"

    dry_run_id = fields.Many2one("crm.sales.agent.dry.run", required=True, ondelete="cascade")
    kind = fields.Selection(
        [("activity", "Activity"), ("escalation", "Escalation")], string="Creates", required=True
    )
    rule = fields.Char(string="Rule Code", required=True)
    rule_label = fields.Char(string="Rule")
    user_id = fields.Many2one(
        "res.users",
        string="Salesperson",
        help="Activities: the user they are assigned to; escalations: the lead's salesperson.",
    )
    count = fields.Integer(string="Count")
