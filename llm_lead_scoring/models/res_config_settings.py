from odoo import api, fields, models

WEIGHT_FIELDS = ("llm_weight_completeness", "llm_weight_clarity", "llm_weight_engagement")


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    # every setting is a field of the company (res_company.py), shown here as Odoo does
    llm_auto_enrich_enabled = fields.Boolean(
        related="company_id.llm_auto_enrich_enabled", readonly=False
    )
    llm_auto_enrich_new_leads = fields.Boolean(
        related="company_id.llm_auto_enrich_new_leads", readonly=False
    )
    llm_auto_enrich_on_update = fields.Boolean(
        related="company_id.llm_auto_enrich_on_update", readonly=False
    )
    llm_enable_customer_research = fields.Boolean(
        related="company_id.llm_enable_customer_research", readonly=False
    )
    llm_exclude_personal_data = fields.Boolean(
        related="company_id.llm_exclude_personal_data", readonly=False
    )
    llm_send_internal_notes = fields.Boolean(
        related="company_id.llm_send_internal_notes", readonly=False
    )
    llm_weight_completeness = fields.Integer(
        related="company_id.llm_weight_completeness", readonly=False
    )
    llm_weight_clarity = fields.Integer(related="company_id.llm_weight_clarity", readonly=False)
    llm_weight_engagement = fields.Integer(
        related="company_id.llm_weight_engagement", readonly=False
    )
    llm_batch_size = fields.Integer(related="company_id.llm_batch_size", readonly=False)
    llm_max_attempts = fields.Integer(related="company_id.llm_max_attempts", readonly=False)
    llm_max_prompt_chars = fields.Integer(related="company_id.llm_max_prompt_chars", readonly=False)
    llm_purpose_scoring = fields.Boolean(related="company_id.llm_purpose_scoring", readonly=False)
    llm_purpose_research = fields.Boolean(related="company_id.llm_purpose_research", readonly=False)
    llm_purpose_tone = fields.Boolean(related="company_id.llm_purpose_tone", readonly=False)
    llm_purpose_drafting = fields.Boolean(related="company_id.llm_purpose_drafting", readonly=False)
    llm_purpose_assistant = fields.Boolean(
        related="company_id.llm_purpose_assistant", readonly=False
    )
    llm_purpose_digest = fields.Boolean(related="company_id.llm_purpose_digest", readonly=False)
    llm_budget_requests_per_minute = fields.Integer(
        related="company_id.llm_budget_requests_per_minute", readonly=False
    )
    llm_budget_tokens_per_day = fields.Integer(
        related="company_id.llm_budget_tokens_per_day", readonly=False
    )
    llm_budget_monthly_cost = fields.Float(
        related="company_id.llm_budget_monthly_cost", readonly=False
    )
    llm_log_retention_days = fields.Integer(
        related="company_id.llm_log_retention_days", readonly=False
    )
    llm_drift_psi_threshold = fields.Float(
        related="company_id.llm_drift_psi_threshold", readonly=False
    )
    llm_drift_calibration_threshold = fields.Float(
        related="company_id.llm_drift_calibration_threshold", readonly=False
    )
    llm_provider_count = fields.Integer(compute="_compute_llm_provider_count")
    llm_scoring_model_status = fields.Char(compute="_compute_llm_scoring_model_status")

    @api.model_create_multi
    def create(self, vals_list):
        # related fields are written to the company one by one, and the three weights must
        # sum to 100 together: they go to the company in one write
        weights = [{k: vals.pop(k) for k in WEIGHT_FIELDS if k in vals} for vals in vals_list]
        records = super().create(vals_list)
        for settings, values in zip(records, weights, strict=True):
            changed = {k: v for k, v in values.items() if settings.company_id[k] != v}
            if changed:
                settings.company_id.write(changed)
        return records

    @api.depends("company_id")
    def _compute_llm_scoring_model_status(self):
        for settings in self:
            settings.llm_scoring_model_status = self.env["llm.scoring.model"]._status_message(
                settings.company_id
            )

    def action_llm_train_now(self):
        return self.env["llm.scoring.model"].action_train_now()

    def _compute_llm_provider_count(self):
        count = (
            self.env["llm.provider"]
            .sudo()
            .search_count([("company_id", "in", [self.env.company.id, False])])
        )
        for settings in self:
            settings.llm_provider_count = count
