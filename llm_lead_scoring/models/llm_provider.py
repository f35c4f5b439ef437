import logging

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..lib import answers

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
    _description = "LLM Provider"
    _order = "is_default desc, sequence, id"
    _check_company_auto = True

    # Identity
    name = fields.Char(required=True)
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
    )
    base_url = fields.Char(
        string="Base URL",
        compute="_compute_base_url",
        store=True,
        readonly=False,
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
        string="Model", compute="_compute_model_name", store=True, readonly=False
    )
    # Behaviour
    temperature = fields.Float(default=0.2)
    max_tokens = fields.Integer(string="Max Tokens", default=800)
    timeout = fields.Integer(string="Timeout (s)", default=60)
    max_retries = fields.Integer(string="Max Retries", default=2)
    sequence = fields.Integer(default=10)
    is_default = fields.Boolean(string="Default", copy=False)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", string="Company", default=lambda self: self.env.company, index=True
    )
    # Usage (aggregated from llm.provider.usage: append-only, so concurrent workers never conflict)
    usage_ids = fields.One2many("llm.provider.usage", "provider_id", string="Usage Log")
    request_count = fields.Integer(string="Requests", compute="_compute_usage_stats")
    failure_count = fields.Integer(string="Failures", compute="_compute_usage_stats")
    invalid_answer_count = fields.Integer(string="Invalid Answers", compute="_compute_usage_stats")
    tokens_in = fields.Integer(string="Tokens In", compute="_compute_usage_stats")
    tokens_out = fields.Integer(string="Tokens Out", compute="_compute_usage_stats")
    cost_per_1k_tokens = fields.Float(
        string="Cost per 1k Tokens", digits=(16, 6), help="Optional, to follow the running cost."
    )
    total_cost = fields.Float(string="Running Cost", compute="_compute_usage_stats", digits=(16, 4))
    avg_latency_ms = fields.Integer(string="Average Latency (ms)", compute="_compute_usage_stats")
    success_rate = fields.Float(string="Success Rate (%)", compute="_compute_usage_stats")
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

    @api.depends("usage_ids", "cost_per_1k_tokens")
    def _compute_usage_stats(self):
        Usage = self.env["llm.provider.usage"].sudo()
        domain = [("provider_id", "in", self.ids)]
        totals = {
            provider.id: values
            for provider, *values in Usage._read_group(
                domain,
                ["provider_id"],
                [
                    "requests:sum",
                    "failures:sum",
                    "invalid_answers:sum",
                    "tokens_in:sum",
                    "tokens_out:sum",
                    "latency_ms:sum",
                    "date:max",
                ],
            )
        }
        last_errors = {
            provider.id: Usage.browse(usage_id).last_error
            for provider, usage_id in Usage._read_group(
                domain + [("last_error", "!=", False)], ["provider_id"], ["id:max"]
            )
        }
        for provider in self:
            requests, failures, invalid, tokens_in, tokens_out, latency, last = totals.get(
                provider.id, (0, 0, 0, 0, 0, 0, False)
            )
            ok = requests - failures
            provider.request_count = requests
            provider.failure_count = failures
            provider.invalid_answer_count = invalid
            provider.tokens_in = tokens_in
            provider.tokens_out = tokens_out
            provider.avg_latency_ms = latency // ok if ok > 0 else 0
            provider.success_rate = 100.0 * ok / requests if requests else 0.0
            provider.total_cost = (tokens_in + tokens_out) / 1000.0 * provider.cost_per_1k_tokens
            provider.last_used = last
            provider.last_error = last_errors.get(provider.id, False)

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
        self.ensure_one()
        result = self.env["llm.service"].call_llm(
            [{"role": "user", "content": "Reply with the single word: OK"}], provider=self
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
        self.usage_ids.sudo().unlink()

    # ------------------------------------------------------------
    # BUSINESS
    # ------------------------------------------------------------

    @api.model
    def get_default_provider(self, company=None):
        """The company's default provider, else its first active one by sequence."""
        providers = self.browse(self.env["llm.service"]._provider_ids(company))
        return providers[:1]

    def get_api_url(self):
        self.ensure_one()
        base = (self.base_url or DEFAULT_BASE_URLS.get(self.provider_type) or "").rstrip("/")
        if self.provider_type == "anthropic":
            return base + "/messages"
        return base + "/chat/completions"

    def get_api_headers(self):
        """HTTP headers including the key: for the service only, never to be logged."""
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

    def format_request_payload(self, messages, system_prompt=None):
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

    def parse_response(self, response_json):
        """(content, tokens_in, tokens_out) from the provider's JSON body.

        :raise UserError: when the body is not an answer of this provider's type
        """
        self.ensure_one()
        try:
            return answers.parse_provider_body(self.provider_type, response_json)
        except answers.UnusableAnswer as exc:
            raise UserError(str(exc)) from exc

    def _prepare_request(self, messages, system_prompt=None):
        """Everything a worker thread needs to call this provider, as a plain dict."""
        self.ensure_one()
        return {
            "url": self.get_api_url(),
            "headers": self.get_api_headers(),
            "payload": self.format_request_payload(messages, system_prompt),
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "provider_type": self.provider_type,
            "provider_id": self.id,
            "provider_name": self.name,
        }

    @api.model
    def increment_usage(
        self,
        provider_id,
        requests=1,
        failures=0,
        invalid_answers=0,
        tokens_in=0,
        tokens_out=0,
        latency_ms=0,
        error=None,
    ):
        """Add usage to a provider."""
        self._increment_usage_batch(
            {
                provider_id: {
                    "requests": requests,
                    "failures": failures,
                    "invalid_answers": invalid_answers,
                    "tokens_in": tokens_in,
                    "tokens_out": tokens_out,
                    "latency_ms": latency_ms,
                    "last_error": error,
                }
            }
        )

    @api.model
    def _increment_usage_batch(self, usage_by_provider):
        """One INSERT for the usage of a whole batch of calls (no UPDATE: several workers
        recording at once never wait for, or conflict with, each other)."""
        now = fields.Datetime.now()
        self.env["llm.provider.usage"].sudo().create(
            [
                dict(
                    usage,
                    provider_id=provider_id,
                    date=now,
                    last_error=(usage.get("last_error") or False) and usage["last_error"][:250],
                )
                for provider_id, usage in usage_by_provider.items()
                if provider_id
            ]
        )


class LlmProviderUsage(models.Model):
    _name = "llm.provider.usage"
    _description = "LLM Provider Usage"
    _order = "date desc, id desc"
    _log_access = False

    provider_id = fields.Many2one("llm.provider", required=True, ondelete="cascade", index=True)
    date = fields.Datetime(required=True, default=fields.Datetime.now, index=True)
    requests = fields.Integer()
    failures = fields.Integer()
    invalid_answers = fields.Integer()
    tokens_in = fields.Integer()
    tokens_out = fields.Integer()
    latency_ms = fields.Integer(help="Total latency of the successful requests.")
    last_error = fields.Char()
