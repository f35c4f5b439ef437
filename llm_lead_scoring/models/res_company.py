from odoo import _, api, fields, models, tools
from odoo.exceptions import ValidationError


class ResCompany(models.Model):
    _inherit = "res.company"

    # the settings of the suite live on the company, one field per setting, read through
    # ``_ai_settings``; a module of the suite adds its own prefix here
    _ai_settings_prefixes = ("llm_",)

    # Background scoring
    llm_auto_enrich_enabled = fields.Boolean(string="Background AI Scoring", default=True)
    llm_auto_enrich_new_leads = fields.Boolean(string="Score New Leads", default=True)
    llm_auto_enrich_on_update = fields.Boolean(string="Re-score on Change", default=True)
    # Score weights (sum 100; 0 switches a component off)
    llm_weight_completeness = fields.Integer(string="Completeness Weight", default=30)
    llm_weight_clarity = fields.Integer(string="Clarity Weight", default=40)
    llm_weight_engagement = fields.Integer(string="Engagement Weight", default=30)
    # Throughput of the scoring cron
    llm_batch_size = fields.Integer(
        string="Batch Size",
        default=50,
        help="Leads the background scoring takes at a time, rounded up to a multiple of the "
        "default provider's concurrent calls so that none of them idles in a batch's last round.",
    )
    llm_max_attempts = fields.Integer(string="Max Attempts", default=3)
    llm_max_prompt_chars = fields.Integer(string="Max Description Characters", default=4000)
    # Privacy
    llm_exclude_personal_data = fields.Boolean(
        string="Do Not Send Personal Data",
        help="E-mail addresses, phone numbers and contact names are removed from every text "
        "sent to an LLM, chatter and drafting context included.",
    )
    llm_send_internal_notes = fields.Boolean(
        string="Send Internal Notes",
        help="Internal notes of the chatter may be sent to the LLM as drafting context. "
        "Off: they never leave Odoo.",
    )
    llm_enable_customer_research = fields.Boolean(string="Customer Research")
    # Purposes: what the company's AI may be used for
    llm_purpose_scoring = fields.Boolean(string="AI for Lead Scoring", default=True)
    llm_purpose_research = fields.Boolean(string="AI for Customer Research", default=True)
    llm_purpose_tone = fields.Boolean(string="AI for Message Tone", default=True)
    llm_purpose_drafting = fields.Boolean(string="AI for Drafting", default=True)
    llm_purpose_assistant = fields.Boolean(string="AI for the Assistant", default=True)
    llm_purpose_digest = fields.Boolean(string="AI for the Dashboard Digest", default=True)
    # Budgets (0: no limit)
    llm_budget_requests_per_minute = fields.Integer(string="Requests per Minute")
    llm_budget_tokens_per_day = fields.Integer(string="Tokens per Day")
    llm_budget_monthly_cost = fields.Float(
        string="Monthly Cost Cap",
        digits=(16, 2),
        help="In the currency of the providers' prices. 0: no cap.",
    )
    # Audit log
    llm_log_retention_days = fields.Integer(
        string="Keep AI Call Log (days)", default=90, help="0: keep forever."
    )
    # Drift watch of the win probability model (0: not watched)
    llm_drift_psi_threshold = fields.Float(
        string="Score Drift Threshold (PSI)",
        digits=(16, 3),
        default=0.2,
        help="Managers get an activity when the population stability index of the win "
        "probability of the leads created since training passes it. 0: not watched.",
    )
    llm_drift_calibration_threshold = fields.Float(
        string="Calibration Error Threshold",
        digits=(16, 3),
        default=0.05,
        help="Managers get an activity when the expected calibration error on the leads "
        "closed since training passes it. 0: not watched.",
    )
    # the budget window whose 80 % warning was sent (not a setting: no cache to clear)
    ai_budget_alert_key = fields.Char(copy=False)

    @api.constrains(
        "llm_weight_completeness",
        "llm_weight_clarity",
        "llm_weight_engagement",
        "llm_batch_size",
        "llm_max_attempts",
        "llm_max_prompt_chars",
        "llm_budget_requests_per_minute",
        "llm_budget_tokens_per_day",
        "llm_budget_monthly_cost",
        "llm_log_retention_days",
        "llm_drift_psi_threshold",
        "llm_drift_calibration_threshold",
    )
    def _check_llm_settings(self):
        for company in self:
            weights = (
                company.llm_weight_completeness,
                company.llm_weight_clarity,
                company.llm_weight_engagement,
            )
            if any(w < 0 for w in weights) or sum(weights) != 100:
                raise ValidationError(
                    _(
                        "The AI score weights must be 0 or more and sum to 100 "
                        "(completeness %(a)s + clarity %(b)s + engagement %(c)s = %(total)s).",
                        a=weights[0],
                        b=weights[1],
                        c=weights[2],
                        total=sum(weights),
                    )
                )
            if not 1 <= company.llm_batch_size <= 1000:
                raise ValidationError(_("The AI scoring batch size must be between 1 and 1000."))
            if not 1 <= company.llm_max_attempts <= 20:
                raise ValidationError(_("Max attempts must be between 1 and 20."))
            if not 200 <= company.llm_max_prompt_chars <= 100000:
                raise ValidationError(
                    _("The description sent to the LLM must be capped at 200 to 100000 characters.")
                )
            if (
                min(
                    company.llm_budget_requests_per_minute,
                    company.llm_budget_tokens_per_day,
                    company.llm_budget_monthly_cost,
                    company.llm_log_retention_days,
                )
                < 0
            ):
                raise ValidationError(_("AI budgets and the log retention cannot be negative."))
            if (
                company.llm_drift_psi_threshold < 0
                or not 0 <= company.llm_drift_calibration_threshold <= 1
            ):
                raise ValidationError(
                    _(
                        "The drift thresholds must be 0 (not watched) or more, the calibration "
                        "error's at most 1."
                    )
                )

    # ------------------------------------------------------------
    # ORM
    # ------------------------------------------------------------

    def write(self, vals):
        res = super().write(vals)
        if any(key.startswith(self._ai_settings_prefixes) for key in vals):
            self.env.registry.clear_cache()  # the cached settings of _ai_settings
        return res

    # ------------------------------------------------------------
    # BUSINESS
    # ------------------------------------------------------------

    @api.model
    def _ai_settings(self, prefix, company=None):
        """The suite's settings of ``company`` (default: the current one) whose field names
        start with ``prefix``, as a dict keyed by the rest of the name: the one way the three
        modules read their settings. Many2one values are ids (or False). Cached per company;
        the cache is cleared when a company's setting is written.

        :param str prefix: e.g. ``"llm_"`` or ``"sales_agent_"``
        """
        company = company or self.env.company
        return dict(self._ai_settings_cached(company.id, prefix))

    @tools.ormcache("company_id", "prefix")
    def _ai_settings_cached(self, company_id, prefix):
        company = self.sudo().browse(company_id)
        names = [
            name
            for name, field in self._fields.items()
            if name.startswith(prefix) and field.store and field.type != "one2many"
        ]
        values = []
        for name in names:
            value = company[name]
            if isinstance(value, models.BaseModel):
                value = value.id
            values.append((name[len(prefix) :], value))
        return tuple(values)
