from odoo import _, api, fields, models
from odoo.exceptions import ValidationError


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    llm_auto_enrich_enabled = fields.Boolean(
        string="Background AI Scoring",
        config_parameter="llm_lead_scoring.auto_enrich_enabled",
        default=True,
    )
    llm_auto_enrich_new_leads = fields.Boolean(
        string="Score New Leads",
        config_parameter="llm_lead_scoring.auto_enrich_new_leads",
        default=True,
    )
    llm_auto_enrich_on_update = fields.Boolean(
        string="Re-score on Change",
        config_parameter="llm_lead_scoring.auto_enrich_on_update",
        default=True,
    )
    llm_enable_customer_research = fields.Boolean(
        string="Customer Research", config_parameter="llm_lead_scoring.enable_customer_research"
    )
    llm_exclude_personal_data = fields.Boolean(
        string="Do Not Send Personal Data",
        config_parameter="llm_lead_scoring.exclude_personal_data",
        help="Leave email, phone and contact name out of what is sent to the LLM.",
    )
    llm_weight_completeness = fields.Integer(
        string="Completeness Weight",
        config_parameter="llm_lead_scoring.weight_completeness",
        default=30,
    )
    llm_weight_clarity = fields.Integer(
        string="Clarity Weight", config_parameter="llm_lead_scoring.weight_clarity", default=40
    )
    llm_weight_engagement = fields.Integer(
        string="Engagement Weight",
        config_parameter="llm_lead_scoring.weight_engagement",
        default=30,
    )
    llm_batch_size = fields.Integer(
        string="Batch Size", config_parameter="llm_lead_scoring.batch_size", default=50
    )
    llm_concurrency = fields.Integer(
        string="Concurrent LLM Calls", config_parameter="llm_lead_scoring.concurrency", default=4
    )
    llm_max_attempts = fields.Integer(
        string="Max Attempts", config_parameter="llm_lead_scoring.max_attempts", default=3
    )
    llm_provider_count = fields.Integer(compute="_compute_llm_provider_count")
    llm_scoring_model_status = fields.Char(compute="_compute_llm_scoring_model_status")

    @api.depends("company_id")
    def _compute_llm_scoring_model_status(self):
        for settings in self:
            settings.llm_scoring_model_status = self.env["llm.scoring.model"]._status_message(
                settings.company_id
            )

    def action_llm_train_now(self):
        return self.env["llm.scoring.model"].action_train_now()

    def _compute_llm_provider_count(self):
        count = self.env["llm.provider"].search_count([])
        for settings in self:
            settings.llm_provider_count = count

    @api.constrains(
        "llm_weight_completeness",
        "llm_weight_clarity",
        "llm_weight_engagement",
        "llm_batch_size",
        "llm_concurrency",
        "llm_max_attempts",
    )
    def _check_llm_settings(self):
        for settings in self:
            weights = (
                settings.llm_weight_completeness,
                settings.llm_weight_clarity,
                settings.llm_weight_engagement,
            )
            if any(w < 0 for w in weights) or sum(weights) != 100:
                raise ValidationError(
                    _(
                        "The AI score weights must be positive and sum to 100 "
                        "(completeness %(a)s + clarity %(b)s + engagement %(c)s = %(total)s).",
                        a=weights[0],
                        b=weights[1],
                        c=weights[2],
                        total=sum(weights),
                    )
                )
            if not 1 <= settings.llm_batch_size <= 1000:
                raise ValidationError(_("The AI scoring batch size must be between 1 and 1000."))
            if not 1 <= settings.llm_concurrency <= 32:
                raise ValidationError(_("Concurrent LLM calls must be between 1 and 32."))
            if not 1 <= settings.llm_max_attempts <= 20:
                raise ValidationError(_("Max attempts must be between 1 and 20."))

    def set_values(self):
        super().set_values()
        # the scoring configuration is cached per company: drop it
        self.env.registry.clear_cache()
