import logging
import time
from concurrent.futures import ThreadPoolExecutor

from odoo import _, api, fields, models, tools
from odoo.exceptions import AccessError, UserError

from ..lib import answers, privacy, transport
from ..lib import budget as budget_lib
from .llm_call_log import PURPOSES

_logger = logging.getLogger(__name__)

HEALTH_DEADLINE_SECONDS = 30  # health_check() answers within this, all providers together

# what each use may cost at most: an answer cap under the provider's own max tokens, and
# stop sequences (a model that never stops is cut here, not at the provider's max tokens)
PURPOSE_OPTIONS = {
    "scoring": {"max_tokens": 600},
    "research": {"max_tokens": 400},
    "tone": {"max_tokens": 8, "stop": ["\n"]},
    "drafting": {"max_tokens": 900},
    "assistant": {"max_tokens": 900},
    "digest": {"max_tokens": 400},
    "test": {"max_tokens": 8, "stop": ["\n"]},
}
# speech to text (audio/transcriptions): a spoken question is far below OpenAI's 25 MB
TRANSCRIPTION_MAX_BYTES = 10 * 1024 * 1024
TRANSCRIPTION_MIMETYPES = {  # the formats OpenAI and Groq accept, and their file extension
    "audio/webm": "webm",
    "audio/ogg": "ogg",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/mpeg": "mp3",
    "audio/mp4": "mp4",
    "audio/m4a": "m4a",
    "audio/x-m4a": "m4a",
    "audio/flac": "flac",
}


class LlmService(models.AbstractModel):
    _name = "llm.service"
    _description = "LLM Integration Service"

    # ------------------------------------------------------------
    # CONFIGURATION (cached; cleared when settings or providers change)
    # ------------------------------------------------------------

    @api.model
    def _get_config(self, company=None):
        """The company's AI settings (``llm_*`` fields of res.company) as a dict (a copy)."""
        return self.env["res.company"]._ai_settings("llm_", company)

    @api.model
    def _provider_ids(self, company=None):
        company = company or self.env.company
        return list(self._provider_ids_cached(company.id))

    @tools.ormcache("company_id")
    def _provider_ids_cached(self, company_id):
        """Active providers in failover order: the default first, then by sequence."""
        providers = (
            self.env["llm.provider"]
            .sudo()
            .search(
                [("company_id", "in", [company_id, False])], order="is_default desc, sequence, id"
            )
        )
        return tuple(providers.ids)

    def _providers(self, company=None):
        return self.env["llm.provider"].sudo().browse(self._provider_ids(company))

    # ------------------------------------------------------------
    # GATEWAY: every AI call of the suite goes through _request / _request_many
    # ------------------------------------------------------------

    @api.model
    def _check_manager(self):
        """CRM managers only (and the superuser of odoo-bin shell and crons)."""
        if not (self.env.su or self.env.user.has_group("sales_team.group_sale_manager")):
            raise AccessError(_("Only CRM managers may do this."))

    @api.model
    def _request(
        self,
        purpose,
        messages,
        system_prompt=None,
        record=None,
        company=None,
        provider=None,
        deadline=None,
        options=None,
        validate=None,
    ):
        """One AI call through the gateway; see ``_request_many``."""
        job = {"messages": messages, "system": system_prompt, "record": record}
        return self._request_many(
            purpose,
            {0: job},
            company=company,
            provider=provider,
            validate=validate,
            deadline=deadline,
            options=options,
        )[0]

    @api.model
    def _request_many(
        self,
        purpose,
        jobs,
        company=None,
        provider=None,
        validate=None,
        deadline=None,
        options=None,
    ):
        """Send ``jobs`` to their company's providers (failover order) or to ``provider``.

        In order, for each company of the jobs: the purpose must be on; personal data is
        removed when the company says so; the company's budget is asked before every HTTP
        attempt. Then every call of every company goes through one pool of worker threads
        (HTTP only), each provider serving at most its *Concurrent Calls* at once; nothing is
        sent past ``deadline``; one ``llm.call.log`` row is written per provider called.
        Never raises for network, provider or budget errors.

        :param str purpose: one of ``llm_call_log.PURPOSES``
        :param dict jobs: {key: {"messages": [...], "system": str, "record": record or None,
            "validate": an optional check of this job's answer, over ``validate``}}
        :param company: the company of jobs without a record (default: the current one)
        :param validate: callable(content) -> parsed value, raising
            ``answers.UnusableAnswer`` for an answer that cannot be used
        :param float deadline: a ``time.monotonic()`` value
        :param dict options: ``max_tokens``, ``stop``, ``schema`` over ``PURPOSE_OPTIONS``
        :return dict: {key: result}, result = success, content, parsed, error, error_kind
            (transport's kinds, ``budget``, ``deadline``, ``disabled``), retry_at (budget),
            provider, provider_id, model, latency_ms, tokens_in, tokens_out, tried, sent
        """
        results, groups = {}, {}
        for key, job in jobs.items():
            record = job.get("record")
            owner = record and "company_id" in record._fields and record.company_id
            groups.setdefault((owner or company or self.env.company).sudo(), {})[key] = job
        Log = self.env["llm.call.log"].sudo()
        call_options = dict(PURPOSE_OPTIONS.get(purpose, {}), **(options or {}))
        calls, budgets, slots = {}, {}, {}
        for owner, owner_jobs in groups.items():
            config = self._get_config(owner)
            if purpose != "test" and not config.get("purpose_" + purpose):
                results.update(
                    self._refuse_all(
                        owner_jobs,
                        "disabled",
                        _(
                            "AI for %(purpose)s is switched off for %(company)s.",
                            purpose=dict(PURPOSES)[purpose],
                            company=owner.name,
                        ),
                    )
                )
                continue
            providers = provider.sudo() if provider else self._providers(owner)
            if not providers:
                results.update(
                    self._refuse_all(owner_jobs, None, _("No LLM provider is configured."))
                )
                continue
            sent = self._redact(owner_jobs, config)
            budgets[owner] = budget = Log._budget(owner, config)
            for p in providers:
                slots.setdefault(p.id, transport.ProviderSlots(p.concurrency))
            for key, job in owner_jobs.items():
                requests = [
                    p._prepare_request(sent[key], job.get("system"), call_options)
                    for p in providers
                ]
                for request in requests:
                    request.update(deadline=deadline, slots=slots[request["provider_id"]])
                calls[key] = (owner, sent[key], requests, budget)
        workers = min(len(calls), sum(s.size for s in slots.values()), 32)
        done = self._execute(
            {key: (reqs, gate) for key, (_o, _s, reqs, gate) in calls.items()}, workers
        )
        logs = []
        for key, result in done.items():
            owner, sent, _requests, budget = calls[key]
            result["sent"] = sent
            result["parsed"] = None
            check = jobs[key].get("validate") or validate
            if result["success"] and check:
                try:
                    result["parsed"] = check(result["content"])
                except answers.UnusableAnswer as exc:
                    result.update(success=False, error=str(exc), error_kind=transport.ERR_INVALID)
                    result["tried"][-1].update(
                        success=False,
                        error=str(exc),
                        error_kind=transport.ERR_INVALID,
                        # what the model wrote, for managers: why it was refused
                        detail=(result["content"] or "").strip()[:250],
                    )
            if result["error_kind"] == transport.ERR_BUDGET:
                result["retry_at"] = Log._budget_window_end(budget.refused)
            logs += self._log_values(purpose, owner, jobs[key], sent, result)
            results[key] = result
        Log._record(logs)
        for owner, budget in budgets.items():
            if budget.refused or any(
                r >= budget_lib.WARNING_RATIO for r in budget.ratios().values()
            ):
                Log._budget_warn(owner, budget)
        return results

    @api.model
    def _transcription_providers(self, company=None):
        """The company's providers that transcribe audio, in failover order."""
        return self._providers(company).filtered(lambda p: p._offers_transcription())

    @api.model
    def _transcribe(self, audio, mimetype, company=None, purpose="assistant"):
        """Speech to text through the gateway: the purpose switch, the budget and one
        ``llm.call.log`` row per provider called, like any AI call. The audio itself is not
        logged (the log says its size and type) nor kept.

        :param bytes audio: the recording
        :param str mimetype: e.g. ``audio/webm;codecs=opus`` (parameters are ignored)
        :return dict: the gateway's result; ``content`` is the text
        :raise UserError: an empty, too large or unsupported recording
        """
        mimetype = (mimetype or "").split(";")[0].strip().lower()
        extension = TRANSCRIPTION_MIMETYPES.get(mimetype)
        if not extension:
            raise UserError(
                _(
                    "Recordings of type %(type)s cannot be transcribed; use one of: %(types)s.",
                    type=mimetype or "?",
                    types=", ".join(sorted(TRANSCRIPTION_MIMETYPES)),
                )
            )
        if not audio:
            raise UserError(_("The recording is empty."))
        if len(audio) > TRANSCRIPTION_MAX_BYTES:
            raise UserError(
                _(
                    "The recording is too long (%(size).1f MB, at most %(max)s MB): ask a "
                    "shorter question.",
                    size=len(audio) / 1024 / 1024,
                    max=TRANSCRIPTION_MAX_BYTES // 1024 // 1024,
                )
            )
        providers = self._transcription_providers(company)
        if not providers:
            return self._refuse_all({0: None}, None, _("No LLM provider offers speech to text."))[0]
        description = _(
            "[audio recording, %(kb)s KB, %(type)s: not stored]",
            kb=max(len(audio) // 1024, 1),
            type=mimetype,
        )
        audio_options = {"data": audio, "mimetype": mimetype, "filename": "audio." + extension}
        return self._request(
            purpose,
            [{"role": "user", "content": description}],
            company=company,
            provider=providers,
            options={"audio": audio_options},
        )

    def _refuse_all(self, jobs, kind, error):
        return {
            key: dict(
                transport.execute_with_failover([]),
                error=error,
                error_kind=kind,
                sent=None,
                parsed=None,
            )
            for key in jobs
        }

    def _execute(self, calls, workers):
        """HTTP in worker threads (no ORM there): {key: transport result}.

        :param dict calls: {key: (requests in failover order, budget gate)}
        """
        if workers <= 1:
            return {
                key: transport.execute_with_failover(reqs, gate=gate)
                for key, (reqs, gate) in calls.items()
            }
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm") as pool:
            futures = {
                key: pool.submit(transport.execute_with_failover, reqs, gate=gate)
                for key, (reqs, gate) in calls.items()
            }
            return {key: future.result() for key, future in futures.items()}

    def _redact(self, jobs, config):
        """{key: messages as they may leave Odoo under the company's privacy settings}."""
        if not config["exclude_personal_data"]:
            return {key: job["messages"] for key, job in jobs.items()}
        names = {}
        records = [job.get("record") for job in jobs.values() if job.get("record")]
        for model in {record._name for record in records}:
            Model = self.env[model]
            if hasattr(Model, "_ai_personal_names"):
                batch = Model.browse({r.id for r in records if r._name == model})
                names[model] = batch._ai_personal_names()
        sent = {}
        for key, job in jobs.items():
            record = job.get("record")
            terms = names.get(record._name, {}).get(record.id, ()) if record else ()
            sent[key] = [
                dict(message, content=privacy.redact(message.get("content") or "", terms))
                for message in job["messages"]
            ]
        return sent

    def _log_values(self, purpose, company, job, sent, result):
        """One audit row per provider called for this job."""
        record = job.get("record")
        content = "\n\n".join(m.get("content") or "" for m in sent or ())
        base = {
            "date": fields.Datetime.now(),
            "user_id": job.get("user_id") or self.env.uid,
            "company_id": company.id,
            "purpose": purpose,
            "res_model": record and record._name,
            "res_id": record and record.id,
            "res_name": record and record.sudo().display_name,
            "content_sent": content,
        }
        prices = {
            p.id: (p.price_input, p.price_output)
            for p in self.env["llm.provider"]
            .sudo()
            .browse([t["provider_id"] for t in result["tried"]])
        }
        rows = []
        for call in result["tried"]:
            price_in, price_out = prices.get(call["provider_id"], (0.0, 0.0))
            kind = call["error_kind"]
            rows.append(
                dict(
                    base,
                    provider_id=call["provider_id"],
                    model_name=call["model"],
                    tokens_in=call["tokens_in"],
                    tokens_out=call["tokens_out"],
                    cost=budget_lib.cost(
                        {"price_input": price_in, "price_output": price_out},
                        call["tokens_in"] or 0,
                        call["tokens_out"] or 0,
                    ),
                    latency_ms=call["latency_ms"],
                    attempts=call["attempts"],
                    outcome="ok"
                    if call["success"]
                    else ("invalid" if kind == transport.ERR_INVALID else "error"),
                    error_kind=kind,
                    error=call["error"] and call["error"][:250],
                    error_detail=call.get("detail") and call["detail"][:250],
                )
            )
        return rows

    # ------------------------------------------------------------
    # HEALTH
    # ------------------------------------------------------------

    @api.model
    def health_check(self, company=None):
        """Ping the providers in failover order (CRM managers, odoo-bin shell).

        :return dict: status healthy (default answers) / degraded (a fallback answers) /
            critical (none answers, or none configured), message, provider, timestamp
        """
        self._check_manager()
        company = self.env["res.company"].browse(company) if isinstance(company, int) else company
        providers = self._providers(company)
        now = fields.Datetime.to_string(fields.Datetime.now())
        if not providers:
            return {
                "status": "critical",
                "message": _("No LLM provider is configured: leads are scored by rules only."),
                "provider": None,
                "timestamp": now,
            }
        messages = [{"role": "user", "content": "Reply with the single word: OK"}]
        # all providers together within the deadline: never near limit_time_real (120 s)
        deadline = time.monotonic() + HEALTH_DEADLINE_SECONDS
        for index, provider in enumerate(providers):
            result = self._request(
                "test", messages, provider=provider, company=company, deadline=deadline
            )
            if result["success"]:
                status = "healthy" if index == 0 else "degraded"
                message = _(
                    "%(name)s answers in %(ms)s ms.", name=provider.name, ms=result["latency_ms"]
                )
                if index:
                    message = _("The default provider does not answer; %(msg)s", msg=message)
                return {
                    "status": status,
                    "message": message,
                    "provider": provider.name,
                    "timestamp": now,
                }
        return {
            "status": "critical",
            "message": _("No LLM provider answers. Last error: %(error)s", error=result["error"]),
            "provider": None,
            "timestamp": now,
        }
