import logging

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

_logger = logging.getLogger(__name__)

DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "openai_compatible": "http://localhost:11434/v1",
}
DEFAULT_MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
    "groq": "llama-3.1-8b-instant",
    "openai_compatible": "llama3.2",
}
ANTHROPIC_VERSION = "2023-06-01"


class LlmProvider(models.Model):
    _name = "llm.provider"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _description = "LLM Provider"
    _order = "is_default desc, sequence, id"
    _check_company_auto = True

    # Identity
    name = fields.Char(required=True, tracking=True)
    provider_type = fields.Selection(
        [
            ("openai", "OpenAI"),
            ("anthropic", "Anthropic"),
            ("groq", "Groq"),
            ("openai_compatible", "OpenAI-compatible server (Ollama, llama.cpp, vLLM, LM Studio)"),
        ],
        string="Type",
        required=True,
        default="openai_compatible",
        tracking=True,
    )
    base_url = fields.Char(
        string="Base URL",
        compute="_compute_base_url",
        store=True,
        readonly=False,
        tracking=True,
        help="Root of the API, e.g. http://localhost:11434/v1 for Ollama.",
    )
    api_key = fields.Char(
        string="API Key",
        groups="sales_team.group_sale_manager",
        copy=False,
        exportable=False,
        help="Readable and writable by CRM managers only. Never logged.",
    )
    model_name = fields.Char(
        string="Model", compute="_compute_model_name", store=True, readonly=False, tracking=True
    )
    # Behaviour
    temperature = fields.Float(default=0.2)
    max_tokens = fields.Integer(string="Max Tokens", default=800)
    timeout = fields.Integer(string="Timeout (s)", default=60)
    max_retries = fields.Integer(string="Max Retries", default=2)
    sequence = fields.Integer(default=10)
    is_default = fields.Boolean(string="Default", copy=False, tracking=True)
    active = fields.Boolean(default=True, tracking=True)
    company_id = fields.Many2one(
        "res.company", string="Company", default=lambda self: self.env.company, index=True
    )
    # Prices, for the running cost and the monthly cost cap of the companies
    price_input = fields.Float(
        string="Price per 1M Input Tokens", digits=(16, 4), help="0 for a local server."
    )
    price_output = fields.Float(string="Price per 1M Output Tokens", digits=(16, 4))
    # Usage, computed from the AI call log since the last reset
    usage_reset_date = fields.Datetime(string="Usage Counted Since", readonly=True, copy=False)
    request_count = fields.Integer(string="Calls", compute="_compute_usage_stats")
    failure_count = fields.Integer(string="Failures", compute="_compute_usage_stats")
    invalid_answer_count = fields.Integer(string="Invalid Answers", compute="_compute_usage_stats")
    tokens_in = fields.Integer(string="Tokens In", compute="_compute_usage_stats")
    tokens_out = fields.Integer(string="Tokens Out", compute="_compute_usage_stats")
    total_cost = fields.Float(string="Running Cost", compute="_compute_usage_stats", digits=(16, 4))
    avg_latency_ms = fields.Integer(string="Average Latency (ms)", compute="_compute_usage_stats")
    success_rate = fields.Float(
        string="Usable Answers (%)",
        compute="_compute_usage_stats",
        help="Calls whose answer was usable, out of all calls.",
    )
    last_used = fields.Datetime(compute="_compute_usage_stats")
    last_error = fields.Char(compute="_compute_usage_stats")

    def init(self):
        # one active default provider per company, whatever the code path that writes it
        self._cr.execute(
            """CREATE UNIQUE INDEX IF NOT EXISTS llm_provider_one_default_per_company
               ON llm_provider (COALESCE(company_id, 0)) WHERE is_default AND active"""
        )

    @api.depends("provider_type")
    def _compute_base_url(self):
        for provider in self:
            if not provider.base_url or provider.base_url in DEFAULT_BASE_URLS.values():
                provider.base_url = DEFAULT_BASE_URLS.get(provider.provider_type)

    @api.depends("provider_type")
    def _compute_model_name(self):
        for provider in self:
            if not provider.model_name or provider.model_name in DEFAULT_MODELS.values():
                provider.model_name = DEFAULT_MODELS.get(provider.provider_type)

    @api.depends("usage_reset_date")
    def _compute_usage_stats(self):
        Log = self.env["llm.call.log"].sudo()
        domain = self._usage_domain()
        totals = {
            (provider.id, outcome): values
            for provider, outcome, *values in Log._read_group(
                domain,
                ["provider_id", "outcome"],
                ["__count", "tokens_in:sum", "tokens_out:sum", "cost:sum", "latency_ms:sum"],
            )
        }
        last = {
            provider.id: (date, log_id)
            for provider, date, log_id in Log._read_group(
                domain, ["provider_id"], ["date:max", "id:max"]
            )
        }
        last_errors = {
            provider.id: Log.browse(log_id).error
            for provider, log_id in Log._read_group(
                domain + [("outcome", "!=", "ok")], ["provider_id"], ["id:max"]
            )
        }
        for provider in self:
            rows = {
                outcome: totals.get((provider.id, outcome), (0, 0, 0, 0.0, 0))
                for outcome in ("ok", "invalid", "error")
            }
            calls = sum(row[0] for row in rows.values())
            ok_calls = rows["ok"][0]
            provider.request_count = calls
            provider.failure_count = calls - ok_calls
            provider.invalid_answer_count = rows["invalid"][0]
            provider.tokens_in = sum(row[1] for row in rows.values())
            provider.tokens_out = sum(row[2] for row in rows.values())
            provider.total_cost = sum(row[3] for row in rows.values())
            provider.avg_latency_ms = rows["ok"][4] // ok_calls if ok_calls else 0
            provider.success_rate = 100.0 * ok_calls / calls if calls else 0.0
            provider.last_used = last.get(provider.id, (False,))[0]
            provider.last_error = last_errors.get(provider.id, False)

    def _usage_domain(self):
        """Log rows counted in these providers' usage: those since each one's reset."""
        domains = []
        for provider in self.filtered("id"):
            domain = [("provider_id", "=", provider.id)]
            if provider.usage_reset_date:
                domain = ["&", ("date", ">=", provider.usage_reset_date)] + domain
            domains.append(domain)
        if not domains:
            return [("id", "=", 0)]
        return ["|"] * (len(domains) - 1) + [term for d in domains for term in d]

    @api.constrains("temperature", "max_tokens", "timeout", "max_retries")
    def _check_ranges(self):
        for provider in self:
            if not 0 <= provider.temperature <= 2:
                raise ValidationError(_("The temperature must be between 0 and 2."))
            if not 100 <= provider.max_tokens <= 100000:
                raise ValidationError(_("Max tokens must be between 100 and 100000."))
            if not 5 <= provider.timeout <= 300:
                raise ValidationError(_("The timeout must be between 5 and 300 seconds."))
            if not 0 <= provider.max_retries <= 10:
                raise ValidationError(_("Max retries must be between 0 and 10."))

    @api.constrains("base_url")
    def _check_base_url(self):
        for provider in self:
            if provider.base_url and not provider.base_url.startswith(("http://", "https://")):
                raise ValidationError(
                    _(
                        "The base URL of %(name)s must start with http:// or https://.",
                        name=provider.name,
                    )
                )

    # ------------------------------------------------------------
    # ORM
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("is_default"):
                self._unset_other_defaults(vals.get("company_id", self.env.company.id))
        providers = super().create(vals_list)
        self.env.registry.clear_cache()
        return providers

    def write(self, vals):
        if vals.get("is_default"):
            for company_id in set(self.mapped(lambda p: vals.get("company_id", p.company_id.id))):
                self._unset_other_defaults(company_id, exclude=self)
        res = super().write(vals)
        self.env.registry.clear_cache()
        return res

    def unlink(self):
        res = super().unlink()
        self.env.registry.clear_cache()
        return res

    def _unset_other_defaults(self, company_id, exclude=None):
        others = self.with_context(active_test=True).search(
            [("is_default", "=", True), ("company_id", "=", company_id or False)]
        )
        if exclude:
            others -= exclude
        if others:
            others.write({"is_default": False})
            # before the new default is written: the unique index checks each statement
            others.flush_recordset(["is_default"])

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_test_connection(self):
        """Send one short request through the gateway and say what came back (managers)."""
        self.ensure_one()
        self.env["llm.service"]._check_manager()
        result = self.env["llm.service"]._request(
            "test",
            [{"role": "user", "content": "Reply with the single word: OK"}],
            provider=self,
            company=self.company_id or None,
        )
        if result["success"]:
            notification = {
                "type": "success",
                "title": _("Connection works"),
                "message": _(
                    "%(name)s answered in %(ms)s ms.", name=self.name, ms=result["latency_ms"]
                ),
            }
        else:
            notification = {
                "type": "danger",
                "title": _("Connection failed"),
                "message": result["error"],
                "sticky": True,
            }
        return {"type": "ir.actions.client", "tag": "display_notification", "params": notification}

    def action_reset_usage(self):
        """Count the usage from now on (managers); the AI call log itself is kept."""
        self.env["llm.service"]._check_manager()
        self.write({"usage_reset_date": fields.Datetime.now()})

    def action_view_calls(self):
        self.ensure_one()
        self.env["llm.service"]._check_manager()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "llm_lead_scoring.llm_call_log_action"
        )
        action["domain"] = [("provider_id", "=", self.id)]
        action["context"] = {}
        return action

    # ------------------------------------------------------------
    # BUSINESS (private: the gateway, llm.service, is the only caller)
    # ------------------------------------------------------------

    def _api_url(self):
        self.ensure_one()
        base = (self.base_url or DEFAULT_BASE_URLS.get(self.provider_type) or "").rstrip("/")
        if self.provider_type == "anthropic":
            return base + "/messages"
        return base + "/chat/completions"

    def _api_headers(self):
        """HTTP headers including the key: for the transport only, never logged or returned."""
        self.ensure_one()
        key = self.sudo().api_key
        headers = {"Content-Type": "application/json"}
        if self.provider_type == "anthropic":
            headers["anthropic-version"] = ANTHROPIC_VERSION
            if key:
                headers["x-api-key"] = key
        elif key:
            headers["Authorization"] = "Bearer %s" % key
        return headers

    def _request_payload(self, messages, system_prompt=None):
        self.ensure_one()
        payload = {
            "model": self.model_name,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        if self.provider_type == "anthropic":
            payload["messages"] = list(messages)
            if system_prompt:
                payload["system"] = system_prompt
        else:
            payload["messages"] = (
                [{"role": "system", "content": system_prompt}] if system_prompt else []
            ) + list(messages)
        return payload

    def _prepare_request(self, messages, system_prompt=None):
        """Everything a worker thread needs to call this provider, as a plain dict."""
        self.ensure_one()
        return {
            "url": self._api_url(),
            "headers": self._api_headers(),
            "payload": self._request_payload(messages, system_prompt),
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "provider_type": self.provider_type,
            "provider_id": self.id,
            "provider_name": self.name,
            "price_input": self.price_input,
            "price_output": self.price_output,
        }
