from odoo import _, api, fields, models
from odoo.exceptions import ValidationError


class ResCompany(models.Model):
    _inherit = "res.company"

    # the settings of the sales agent, read through ``_ai_settings("sales_agent_")``
    # (crm.lead._sales_agent_config); writing one clears its cache
    _ai_settings_prefixes = ("llm_", "sales_agent_")

    # Go-live: set to the install date (existing companies get it when the column is added,
    # at install or upgrade; new companies their creation date)
    sales_agent_go_live_date = fields.Date(
        string="Sales Agent Go-live",
        default=fields.Date.context_today,
        help="The agent acts only on leads that went quiet after this date: created, moved to "
        "their stage or last contacted on or after it. Older leads keep their risk and next "
        "action but get no follow-up or escalation. Empty: every lead, the whole backlog.",
    )
    # Follow-ups
    sales_agent_followup_enabled = fields.Boolean(string="Inactivity Follow-ups", default=True)
    sales_agent_followup_lead_days = fields.Integer(string="Leads: days without contact", default=3)
    sales_agent_followup_opportunity_days = fields.Integer(
        string="Opportunities: days without contact", default=7
    )
    sales_agent_new_lead_call_enabled = fields.Boolean(
        string="Call New Leads within 24 Hours", default=True
    )
    sales_agent_stage_activities_enabled = fields.Boolean(
        string="Activities on Stage Entry", default=True
    )
    # Risk
    sales_agent_risk_enabled = fields.Boolean(string="Risk and Next Action", default=True)
    sales_agent_tone_analysis_enabled = fields.Boolean(
        string="Tone of Inbound Messages (LLM)", default=True
    )
    sales_agent_stuck_factor = fields.Float(
        string="Stuck when over usual stage time x", default=1.5
    )
    sales_agent_high_score_threshold = fields.Float(string="High quality score from", default=70.0)
    sales_agent_high_score_hours = fields.Integer(
        string="High score: hours without contact", default=24
    )
    # Escalations
    sales_agent_escalation_enabled = fields.Boolean(string="Escalations", default=True)
    sales_agent_escalation_overdue_enabled = fields.Boolean(
        string="Overdue follow-up", default=True
    )
    sales_agent_escalation_overdue_days = fields.Integer(
        string="Overdue by more than (days)", default=3
    )
    sales_agent_escalation_high_value_enabled = fields.Boolean(
        string="High-value deal at risk", default=True
    )
    sales_agent_escalation_high_value_amount = fields.Float(
        string="Expected revenue from", default=50000.0
    )
    sales_agent_escalation_high_score_enabled = fields.Boolean(
        string="High quality score not contacted", default=True
    )
    sales_agent_escalation_level2_days = fields.Integer(
        string="Second level after (days)", default=2
    )
    sales_agent_escalation_cooldown_days = fields.Integer(
        string="Re-escalate after (days)",
        default=7,
        help="A rule does not escalate a lead again this many days after it was resolved.",
    )
    sales_agent_escalation_manager_id = fields.Many2one(
        "res.users",
        string="Escalation Manager",
        domain="[('share', '=', False)]",
        ondelete="set null",
        help="Receives first-level escalations instead of the team leader.",
    )
    sales_agent_escalation_level2_manager_id = fields.Many2one(
        "res.users",
        string="Second-level Manager",
        domain="[('share', '=', False)]",
        ondelete="set null",
        help="Receives second-level escalations. Empty: the first sales administrator of the "
        "company who is not the first-level recipient.",
    )
    # Throughput of the crons
    sales_agent_batch_size = fields.Integer(string="Cron Batch Size", default=500)
    # Copilot
    sales_agent_copilot_retention_days = fields.Integer(
        string="Keep Copilot Conversations (days)",
        default=90,
        help="Conversations with the copilot idle for longer are deleted. 0: keep forever.",
    )

    @api.constrains(
        "sales_agent_followup_lead_days",
        "sales_agent_followup_opportunity_days",
        "sales_agent_high_score_hours",
        "sales_agent_escalation_overdue_days",
        "sales_agent_escalation_level2_days",
        "sales_agent_escalation_cooldown_days",
        "sales_agent_batch_size",
        "sales_agent_stuck_factor",
    )
    def _check_sales_agent_settings(self):
        for company in self:
            if (
                min(
                    company.sales_agent_followup_lead_days,
                    company.sales_agent_followup_opportunity_days,
                    company.sales_agent_escalation_level2_days,
                )
                < 1
            ):
                raise ValidationError(_("Sales agent delays must be at least one day."))
            if (
                min(
                    company.sales_agent_high_score_hours,
                    company.sales_agent_escalation_overdue_days,
                    company.sales_agent_escalation_cooldown_days,
                )
                < 0
            ):
                raise ValidationError(_("Sales agent thresholds cannot be negative."))
            if not 1 <= company.sales_agent_batch_size <= 10000:
                raise ValidationError(_("The sales agent batch size must be between 1 and 10000."))
            if company.sales_agent_stuck_factor < 1:
                raise ValidationError(_("The stuck factor must be at least 1."))

    @api.constrains("sales_agent_copilot_retention_days")
    def _check_sales_agent_copilot_retention(self):
        if any(company.sales_agent_copilot_retention_days < 0 for company in self):
            raise ValidationError(_("The copilot's conversation retention cannot be negative."))
