import logging
import time

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from ..lib import answers, prompts

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
TEST_DEADLINE_SECONDS = 30  # a connection test never holds the browser longer
MEASURE_DEADLINE_SECONDS = 90  # under Odoo's default limit_time_real (120 s)
MEASURE_SAMPLE_LEAD = {
    "title": "ERP roll-out for 50 users",
    "company": "Sample Industries",
    "stage": "Qualification",
    "expected_revenue": 45000,
    "description": "We need an ERP for 50 users to replace our legacy system by Q3. Budget "
    "approved: 40k EUR. The CFO signs off; we want a demo and a quotation within two weeks.",
}


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
    transcription_model = fields.Char(
        help="Speech-to-text model of this provider's audio/transcriptions endpoint (OpenAI: "
        "whisper-1 or gpt-4o-mini-transcribe; Groq: whisper-large-v3-turbo; an "
        "OpenAI-compatible server that offers it). Empty: this provider does not transcribe, "
        "and the copilot's microphone is hidden when no provider does.",
    )
    # Behaviour
    temperature = fields.Float(default=0.2)
    max_tokens = fields.Integer(string="Max Tokens", default=800)
    timeout = fields.Integer(
        string="Timeout (s)",
        compute="_compute_timeout",
        store=True,
        readonly=False,
        help="A model on a CPU needs time: 85 s by default for an OpenAI-compatible server (a "
        "scoring run works 90 s at most), 60 s for the hosted APIs. Measure proposes one.",
    )
    structured_output = fields.Selection(
        [
            ("json_schema", "JSON schema (response_format: OpenAI, vLLM, Ollama, llama.cpp)"),
            ("json_object", "JSON object (response_format json_object: Groq, older servers)"),
            ("llama_cpp", "llama-cpp-python (json_object with schema)"),
            ("ollama", "Ollama native (format)"),
            ("vllm", "vLLM guided decoding (guided_json)"),
            ("tool", "Forced tool call (Anthropic)"),
            ("none", "None (the prompt alone asks for JSON)"),
        ],
        string="Structured Output",
        compute="_compute_structured_output",
        store=True,
        readonly=False,
        help="How a JSON answer is asked from this provider, so that it follows the contract.",
    )
    concurrency = fields.Integer(
        string="Concurrent Calls",
        compute="_compute_concurrency",
        store=True,
        readonly=False,
        help="Calls this provider serves at once, for all companies and batches of a worker. "
        "A local server (llama.cpp, Ollama) usually serves one at a time: 1.",
    )
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
    attempt_count = fields.Integer(
        string="HTTP Attempts", compute="_compute_usage_stats", help="Retries included."
    )
    failure_count = fields.Integer(string="Failures", compute="_compute_usage_stats")
    invalid_answer_count = fields.Integer(string="Invalid Answers", compute="_compute_usage_stats")
    tokens_in = fields.Integer(string="Tokens In", compute="_compute_usage_stats")
    tokens_out = fields.Integer(string="Tokens Out", compute="_compute_usage_stats")
    total_cost = fields.Float(string="Running Cost", compute="_compute_usage_stats", digits=(16, 4))
    avg_latency_ms = fields.Integer(string="Average Latency (ms)", compute="_compute_usage_stats")
    success_rate = fields.Float(
        string="Usable Answers (%)",
        compute="_compute_usage_stats",
        help="Usable answers out of all HTTP attempts (retries included).",
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
    def _compute_structured_output(self):
        defaults = {
            "openai": "json_schema",
            "groq": "json_object",
            "anthropic": "tool",
            "openai_compatible": "llama_cpp",
        }
        for provider in self:
            if not provider.structured_output or provider.structured_output in (
                "json_schema",
                "json_object",
                "tool",
                "llama_cpp",
            ):
                provider.structured_output = defaults.get(provider.provider_type, "none")

    @api.depends("provider_type")
    def _compute_timeout(self):
        for provider in self:
            if not provider.timeout:
                provider.timeout = 85 if provider.provider_type == "openai_compatible" else 60

    @api.depends("provider_type")
    def _compute_concurrency(self):
        for provider in self:
            if not provider.concurrency:
                provider.concurrency = 1 if provider.provider_type == "openai_compatible" else 4

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
                [
                    "__count",
                    "tokens_in:sum",
                    "tokens_out:sum",
                    "cost:sum",
                    "latency_ms:sum",
                    "attempts:sum",
                ],
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
                outcome: totals.get((provider.id, outcome), (0, 0, 0, 0.0, 0, 0))
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
            attempts = sum(row[5] for row in rows.values())
            provider.attempt_count = attempts
            provider.success_rate = 100.0 * ok_calls / attempts if attempts else 0.0
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

    @api.constrains(
        "temperature",
        "max_tokens",
        "timeout",
        "max_retries",
        "concurrency",
        "price_input",
        "price_output",
    )
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
            if not 1 <= provider.concurrency <= 32:
                raise ValidationError(_("Concurrent calls must be between 1 and 32."))
            if provider.price_input < 0 or provider.price_output < 0:
                raise ValidationError(_("Prices cannot be negative."))

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
        """Send one short request through the gateway and check the answer itself
        (managers): a server that answers with nothing, or with the question, is not a
        working model."""
        self.ensure_one()
        self.env["llm.service"]._check_manager()
        question = "Reply with the single word: OK"
        result = self.env["llm.service"]._request(
            "test",
            [{"role": "user", "content": question}],
            provider=self,
            company=self.company_id or None,
            deadline=time.monotonic() + TEST_DEADLINE_SECONDS,
        )
        answer = (result.get("content") or "").strip()
        problem = (
            result["error"]
            if not result["success"]
            else self._test_answer_problem(question, answer)
        )
        if not problem:
            notification = {
                "type": "success",
                "title": _("Connection works"),
                "message": _(
                    "%(name)s answered %(answer)s in %(ms)s ms.",
                    name=self.name,
                    answer=answer[:20],
                    ms=result["latency_ms"],
                ),
            }
        else:
            notification = {
                "type": "danger",
                "title": _("Connection failed"),
                "message": problem,
                "sticky": True,
            }
        return {"type": "ir.actions.client", "tag": "display_notification", "params": notification}

    def _test_answer_problem(self, question, answer):
        """Why the answer to the connection test shows a model that does not work, or None."""
        template_hint = _(
            "A local server (llama.cpp, Ollama) needs the model's chat template: start it with "
            "the model's chat format (e.g. --chat_format for llama-cpp-python) or a GGUF that "
            "ships its template."
        )
        if not answer:
            return _("The model answered nothing. %(hint)s", hint=template_hint)
        if question.lower() in answer.lower() or "<start_of_turn>" in answer:
            return _("The model repeated the question. %(hint)s", hint=template_hint)
        if "ok" not in answer.lower() or len(answer) > 40:
            return _(
                "The model did not follow the instruction (it answered %(answer)r): it is "
                "unlikely to give usable analyses.",
                answer=answer[:80],
            )
        return None

    def action_measure(self):
        """Time one real scoring-sized request and propose settings that fit this server
        (managers): a timeout three times the measured latency, one call at a time for a
        server that answers slowly."""
        self.ensure_one()
        self.env["llm.service"]._check_manager()
        sample = prompts.lead_payload(MEASURE_SAMPLE_LEAD)
        system, messages = prompts.build_messages(sample)
        result = self.env["llm.service"]._request(
            "test",
            messages,
            system_prompt=system,
            provider=self,
            company=self.company_id or None,
            deadline=time.monotonic() + MEASURE_DEADLINE_SECONDS,
            options={"max_tokens": 600, "schema": answers.ANALYSIS_SCHEMA, "stop": None},
        )
        seconds = result["latency_ms"] / 1000.0
        if not result["success"]:
            params = {
                "type": "danger",
                "title": _("Measure failed"),
                "message": _(
                    "%(error)s (after %(s).1f s). A CPU server may need a longer timeout.",
                    error=result["error"],
                    s=seconds,
                ),
                "sticky": True,
            }
            return {"type": "ir.actions.client", "tag": "display_notification", "params": params}
        timeout = min(max(int(seconds * 3) + 1, 10), 300)
        concurrency = 1 if seconds > 5 or self.provider_type == "openai_compatible" else 4
        rate = result["tokens_out"] / seconds if seconds else 0.0
        self.write({"timeout": timeout, "concurrency": concurrency, "max_retries": 1})
        params = {
            "type": "success",
            "title": _("Measured: %(s).1f s per analysis", s=seconds),
            "message": _(
                "%(tokens)s tokens out at %(rate).1f tokens/s. Set: timeout %(timeout)s s, "
                "%(concurrency)s concurrent call(s), 1 retry (for rate limits and server "
                "errors only). Scoring throughput: about %(per_min).0f leads a minute.",
                tokens=result["tokens_out"],
                rate=rate,
                timeout=timeout,
                concurrency=concurrency,
                per_min=60.0 * concurrency / seconds if seconds else 0.0,
            ),
            "sticky": True,
            "next": {"type": "ir.actions.client", "tag": "soft_reload"},
        }
        return {"type": "ir.actions.client", "tag": "display_notification", "params": params}

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

    def _request_payload(self, messages, system_prompt=None, options=None):
        """The provider's request body.

        :param dict options: per-purpose limits of the gateway: ``max_tokens`` (a cap under
            the provider's own), ``stop`` (stop sequences), ``schema`` (a JSON schema the
            answer must follow, asked in the form this provider understands), ``tools``
            (function calling; the answer is then read by ``answers.parse_tool_calls``)
        """
        self.ensure_one()
        options = options or {}
        payload = {
            "model": self.model_name,
            "max_tokens": min(self.max_tokens, options.get("max_tokens") or self.max_tokens),
            "temperature": self.temperature,
        }
        if self.provider_type == "anthropic":
            payload["messages"] = list(messages)
            if system_prompt:
                payload["system"] = system_prompt
            if options.get("stop"):
                payload["stop_sequences"] = list(options["stop"])
        else:
            payload["messages"] = (
                [{"role": "system", "content": system_prompt}] if system_prompt else []
            ) + list(messages)
            if options.get("stop"):
                payload["stop"] = list(options["stop"])
        schema = options.get("schema")
        mode = self.structured_output
        if schema and mode in ("llama_cpp", "ollama", "vllm"):
            # a local server's grammar enforces lengths: the answer ends within bounds
            schema = answers.bounded_schema(schema)
        if schema and mode == "tool":
            payload["tools"] = [
                {"name": "answer", "description": "The answer.", "input_schema": schema}
            ]
            payload["tool_choice"] = {"type": "tool", "name": "answer"}
        elif schema and mode == "json_schema":
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema},
            }
        elif schema and mode == "json_object":
            payload["response_format"] = {"type": "json_object"}
        elif schema and mode == "llama_cpp":
            payload["response_format"] = {"type": "json_object", "schema": schema}
        elif schema and mode == "ollama":
            payload["format"] = schema
        elif schema and mode == "vllm":
            payload["guided_json"] = schema
        if options.get("tools"):  # function calling: [{"name", "description", "parameters"}]
            if self.provider_type == "anthropic":
                payload["tools"] = [
                    {
                        "name": t["name"],
                        "description": t["description"],
                        "input_schema": t["parameters"],
                    }
                    for t in options["tools"]
                ]
            else:  # OpenAI form: Groq and OpenAI-compatible servers too
                payload["tools"] = [{"type": "function", "function": t} for t in options["tools"]]
                payload["tool_choice"] = "auto"
        return payload

    def _offers_transcription(self):
        """Whether this provider has a speech-to-text endpoint the gateway can call."""
        self.ensure_one()
        return bool(self.transcription_model) and self.provider_type != "anthropic"

    def _prepare_request(self, messages, system_prompt=None, options=None):
        """Everything a worker thread needs to call this provider, as a plain dict.

        With ``options["audio"]`` (``{"data": bytes, "mimetype": str, "filename": str}``) the
        request is a multipart ``POST {base_url}/audio/transcriptions`` (OpenAI, Groq and the
        OpenAI-compatible servers that offer it) with ``model`` and ``file``.
        """
        self.ensure_one()
        audio = (options or {}).get("audio")
        if audio:
            headers = self._api_headers()
            headers.pop("Content-Type", None)  # requests writes the multipart boundary
            base = (self.base_url or DEFAULT_BASE_URLS.get(self.provider_type) or "").rstrip("/")
            return {
                "url": base + "/audio/transcriptions",
                "headers": headers,
                "payload": {"model": self.transcription_model},
                "multipart": {
                    "data": {"model": self.transcription_model, "response_format": "json"},
                    "files": {"file": (audio["filename"], audio["data"], audio["mimetype"])},
                },
                "timeout": self.timeout,
                "max_retries": self.max_retries,
                "provider_type": self.provider_type,
                "provider_id": self.id,
                "provider_name": self.name,
                "price_input": self.price_input,
                "price_output": self.price_output,
            }
        return {
            "url": self._api_url(),
            "headers": self._api_headers(),
            "payload": self._request_payload(messages, system_prompt, options),
            "tool_calling": bool((options or {}).get("tools")),
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "provider_type": self.provider_type,
            "provider_id": self.id,
            "provider_name": self.name,
            "price_input": self.price_input,
            "price_output": self.price_output,
        }
