from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    # every setting is a field of the company (res_company.py), shown here as Odoo does
    sales_agent_go_live_date = fields.Date(
        related="company_id.sales_agent_go_live_date", readonly=False
    )
    sales_agent_followup_enabled = fields.Boolean(
        related="company_id.sales_agent_followup_enabled", readonly=False
    )
    sales_agent_followup_lead_days = fields.Integer(
        related="company_id.sales_agent_followup_lead_days", readonly=False
    )
    sales_agent_followup_opportunity_days = fields.Integer(
        related="company_id.sales_agent_followup_opportunity_days", readonly=False
    )
    sales_agent_new_lead_call_enabled = fields.Boolean(
        related="company_id.sales_agent_new_lead_call_enabled", readonly=False
    )
    sales_agent_stage_activities_enabled = fields.Boolean(
        related="company_id.sales_agent_stage_activities_enabled", readonly=False
    )
    sales_agent_risk_enabled = fields.Boolean(
        related="company_id.sales_agent_risk_enabled", readonly=False
    )
    sales_agent_tone_analysis_enabled = fields.Boolean(
        related="company_id.sales_agent_tone_analysis_enabled", readonly=False
    )
    sales_agent_stuck_factor = fields.Float(
        related="company_id.sales_agent_stuck_factor", readonly=False
    )
    sales_agent_high_score_threshold = fields.Float(
        related="company_id.sales_agent_high_score_threshold", readonly=False
    )
    sales_agent_high_score_hours = fields.Integer(
        related="company_id.sales_agent_high_score_hours", readonly=False
    )
    sales_agent_escalation_enabled = fields.Boolean(
        related="company_id.sales_agent_escalation_enabled", readonly=False
    )
    sales_agent_escalation_overdue_enabled = fields.Boolean(
        related="company_id.sales_agent_escalation_overdue_enabled", readonly=False
    )
    sales_agent_escalation_overdue_days = fields.Integer(
        related="company_id.sales_agent_escalation_overdue_days", readonly=False
    )
    sales_agent_escalation_high_value_enabled = fields.Boolean(
        related="company_id.sales_agent_escalation_high_value_enabled", readonly=False
    )
    sales_agent_escalation_high_value_amount = fields.Float(
        related="company_id.sales_agent_escalation_high_value_amount", readonly=False
    )
    sales_agent_escalation_high_score_enabled = fields.Boolean(
        related="company_id.sales_agent_escalation_high_score_enabled", readonly=False
    )
    sales_agent_escalation_level2_days = fields.Integer(
        related="company_id.sales_agent_escalation_level2_days", readonly=False
    )
    sales_agent_escalation_cooldown_days = fields.Integer(
        related="company_id.sales_agent_escalation_cooldown_days", readonly=False
    )
    sales_agent_escalation_manager_id = fields.Many2one(
        related="company_id.sales_agent_escalation_manager_id", readonly=False
    )
    sales_agent_escalation_level2_manager_id = fields.Many2one(
        related="company_id.sales_agent_escalation_level2_manager_id", readonly=False
    )
    sales_agent_batch_size = fields.Integer(
        related="company_id.sales_agent_batch_size", readonly=False
    )
    sales_agent_copilot_retention_days = fields.Integer(
        related="company_id.sales_agent_copilot_retention_days", readonly=False
    )

    def action_sales_agent_dry_run(self):
        """What the agent's next run would create in this company (saved settings), nothing
        written: see crm.sales.agent.dry.run."""
        self.ensure_one()
        return self.env["crm.sales.agent.dry.run"]._action_preview(self.company_id)
