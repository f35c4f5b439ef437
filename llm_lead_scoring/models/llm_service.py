import logging
from concurrent.futures import ThreadPoolExecutor

from odoo import _, api, fields, models, tools
from odoo.exceptions import AccessError
from odoo.tools import html2plaintext

from ..lib import answers, privacy, prompts, rules, transport
from ..lib import budget as budget_lib
from .llm_call_log import PURPOSES

_logger = logging.getLogger(__name__)

COMPONENTS = ("completeness", "clarity", "engagement")
# what each use may cost at most: an answer cap under the provider's own max tokens, and
# stop sequences (a model that never stops is cut here, not at the provider's max tokens)
PURPOSE_OPTIONS = {
    "scoring": {"max_tokens": 600},
    "research": {"max_tokens": 400},
    "tone": {"max_tokens": 8, "stop": ["\n"]},
    "drafting": {"max_tokens": 900},
    "assistant": {"max_tokens": 900},
    "test": {"max_tokens": 8, "stop": ["\n"]},
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
        :param dict jobs: {key: {"messages": [...], "system": str, "record": record or None}}
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
            if result["success"] and validate:
                try:
                    result["parsed"] = validate(result["content"])
                except answers.UnusableAnswer as exc:
                    result.update(success=False, error=str(exc), error_kind=transport.ERR_INVALID)
                    result["tried"][-1].update(
                        success=False, error=str(exc), error_kind=transport.ERR_INVALID
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
        for index, provider in enumerate(providers):
            result = self._request("test", messages, provider=provider, company=company)
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

    # ------------------------------------------------------------
    # LEAD FACTS
    # ------------------------------------------------------------

    @api.model
    def _lead_facts(self, leads):
        """Plain data of many leads for rules and prompts, with a constant number of queries."""
        facts = {}
        for lead in leads:
            address = ", ".join(
                part for part in (lead.street, lead.city, lead.zip, lead.country_id.name) if part
            )
            facts[lead.id] = {
                "title": lead.name,
                "type": lead.type,
                "stage": lead.stage_id.name,
                "company": lead.partner_name
                or lead.partner_id.commercial_company_name
                or (lead.partner_id.is_company and lead.partner_id.name)
                or "",
                "contact_name": lead.contact_name
                or (not lead.partner_id.is_company and lead.partner_id.name)
                or "",
                "job_position": lead.function,
                "email": lead.email_from,
                "phone": lead.phone or lead.mobile,
                "website": lead.website,
                "address": address,
                "expected_revenue": lead.expected_revenue,
                "currency": lead.company_currency.name,
                "probability": lead.probability,
                "tags": lead.tag_ids.mapped("name"),
                "source": lead.source_id.name,
                "description": html2plaintext(lead.description or "").strip(),
            }
        return facts

    @api.model
    def _engagement_counts(self, lead_ids):
        """Activities and messages per lead, two queries whatever the number of leads.

        A contact is a done activity or a message in or out (internal notes and system
        notifications are not contacts).
        """
        counts = {
            lead_id: {
                "activities_done": 0,
                "activities_planned": 0,
                "messages_in": 0,
                "messages_out": 0,
                "last_contact": None,
            }
            for lead_id in lead_ids
        }
        if not lead_ids:
            return counts
        self.env["mail.message"].flush_model()
        self.env["mail.activity"].flush_model()
        self.env.cr.execute(
            """
            SELECT m.res_id,
                   COUNT(*) FILTER (WHERE m.mail_activity_type_id IS NOT NULL),
                   COUNT(*) FILTER (WHERE m.mail_activity_type_id IS NULL
                                      AND NOT internal.is AND NOT author.is_user),
                   COUNT(*) FILTER (WHERE m.mail_activity_type_id IS NULL
                                      AND NOT internal.is AND author.is_user),
                   MAX(m.date) FILTER (WHERE m.mail_activity_type_id IS NOT NULL OR NOT internal.is)
              FROM mail_message m
         LEFT JOIN mail_message_subtype st ON st.id = m.subtype_id
        CROSS JOIN LATERAL (
                   SELECT COALESCE(m.is_internal, FALSE) OR COALESCE(st.internal, FALSE) AS is
                   ) internal
        CROSS JOIN LATERAL (
                   SELECT EXISTS(SELECT 1 FROM res_users u
                                  WHERE u.partner_id = m.author_id
                                    AND u.share IS NOT TRUE) AS is_user
                   ) author
             WHERE m.model = 'crm.lead' AND m.res_id = ANY(%s)
               AND (m.message_type IN ('email', 'comment') OR m.mail_activity_type_id IS NOT NULL)
          GROUP BY m.res_id
            """,
            [list(lead_ids)],
        )
        for res_id, done, msg_in, msg_out, last_contact in self.env.cr.fetchall():
            counts[res_id].update(
                activities_done=done,
                messages_in=msg_in,
                messages_out=msg_out,
                last_contact=last_contact,
            )
        for res_id, count in (
            self.env["mail.activity"]
            .sudo()
            ._read_group(
                [("res_model", "=", "crm.lead"), ("res_id", "in", list(lead_ids))],
                ["res_id"],
                ["__count"],
            )
        ):
            counts[res_id]["activities_planned"] = count
        return counts

    # ------------------------------------------------------------
    # ANALYSIS
    # ------------------------------------------------------------

    @api.model
    def _analyze(self, lead):
        """Scores and analyses of one lead, not written (for odoo-bin shell)."""
        return self._score_leads(lead)[lead.id]

    @api.model
    def _research(self, lead):
        """What the lead's own data says about the customer company: the answer keeps only
        the URLs, domains, e-mails and phones that are in the lead's data.

        :return dict: success, content, error
        """
        config = self._get_config(lead.company_id or None)
        if not config["enable_customer_research"]:
            return {
                "success": False,
                "content": None,
                "error": _("Customer research is disabled in the settings."),
            }
        facts = self._lead_facts(lead)[lead.id]
        sent = prompts.lead_payload(
            facts, config["max_prompt_chars"], config["exclude_personal_data"]
        )
        system, messages = prompts.build_messages(sent, prompts.RESEARCH_PROMPT)
        result = self._request("research", messages, system_prompt=system, record=lead)
        if result["success"]:
            known = privacy.known_facts(" ".join(str(v) for v in facts.values() if v))
            result["content"] = privacy.keep_known(result["content"], known)
        return {key: result[key] for key in ("success", "content", "error")}

    def _engagement_args(self, counts):
        last = counts.get("last_contact")
        days = (fields.Datetime.now() - last).days if last else None
        return {
            "activities_done": counts["activities_done"],
            "activities_planned": counts["activities_planned"],
            "messages_in": counts["messages_in"],
            "messages_out": counts["messages_out"],
            "days_since_contact": days,
        }

    # ------------------------------------------------------------
    # BATCH SCORING
    # ------------------------------------------------------------

    @api.model
    def _score_leads(self, leads, use_llm=True, deadline=None):
        """Score many leads: rules in bulk, LLM calls through the gateway, each lead with its
        company's settings.

        Prompts are built and results read in this thread; worker threads only do HTTP.
        :return dict: {lead_id: outcome} (see ``_outcome``)
        """
        if not leads:
            return {}
        facts = self._lead_facts(leads)
        counts = self._engagement_counts(leads.ids)
        llm = self._run_llm(leads, facts, deadline) if use_llm else {}
        outcomes = {}
        for lead in leads:
            config = self._get_config(lead.company_id or None)
            weights = {c: config["weight_" + c] for c in COMPONENTS}
            outcomes[lead.id] = self._outcome(
                facts[lead.id], counts[lead.id], weights, llm.get(lead.id)
            )
        return outcomes

    def _run_llm(self, leads, facts, deadline=None):
        """LLM analysis of many leads, of any companies, in one gateway call:
        {lead_id: {sent, result, analysis, error, unusable, deferred_until, not_sent}}."""
        jobs = {}
        for lead in leads:
            if not self._provider_ids(lead.company_id or None):
                continue
            config = self._get_config(lead.company_id or None)
            sent = prompts.lead_payload(
                facts[lead.id], config["max_prompt_chars"], config["exclude_personal_data"]
            )
            system, messages = prompts.build_messages(sent)
            jobs[lead.id] = {
                "messages": messages,
                "system": system,
                "record": lead,
                # "Score with AI": the call is the asking user's, in the AI call log
                "user_id": lead.ai_requested_by.id,
            }
        results = self._request_many(
            "scoring",
            jobs,
            validate=answers.parse_analysis,
            deadline=deadline,
            options={"schema": answers.ANALYSIS_SCHEMA},
        )
        out = {}
        for lead_id, result in results.items():
            if result["error_kind"] == "disabled":
                continue  # AI scoring is off for the company: rules alone, as with no provider
            out[lead_id] = {
                "sent": "\n".join(m["content"] for m in result["sent"] or ()),
                "result": result,
                "analysis": result["parsed"],
                "error": None if result["parsed"] else result["error"],
                "unusable": any(t["error_kind"] == transport.ERR_INVALID for t in result["tried"]),
                "deferred_until": result.get("retry_at")
                if result["error_kind"] == transport.ERR_BUDGET
                else None,
                # not sent at all (the batch's time was up): no attempt is counted
                "not_sent": result["error_kind"] == transport.ERR_DEADLINE
                and not any(t["attempts"] for t in result["tried"]),
            }
        return out

    def _outcome(self, facts, counts, weights, llm):
        """Merge rule scores and the LLM analysis of one lead into what is written on it."""
        completeness = rules.completeness(facts)
        clarity = rules.clarity(facts["description"])
        engagement = rules.engagement(**self._engagement_args(counts))
        analysis = llm and llm["analysis"]
        if analysis:
            clarity = dict(
                clarity,
                score=analysis["clarity"],
                analysis=analysis["summary"],
                method="llm",
                signals=dict(clarity["signals"], **analysis["signals"]),
            )
        scores = {
            "completeness": completeness["score"],
            "clarity": clarity["score"],
            "engagement": engagement["score"],
        }
        calculated = rules.weighted_score(scores, weights)
        deferred = llm and llm["deferred_until"]
        # transport failure (not an unusable answer, not a budget): keep rule scores, retry
        not_sent = bool(llm and llm["not_sent"])
        failed = bool(
            llm and not analysis and not llm["unusable"] and not deferred and not not_sent
        )
        if analysis:
            summary = analysis["summary"]
        elif llm and llm["unusable"]:
            # the validator's words are for managers (AI call log), not for the salesperson
            summary = _("Scored by rules: the AI answer was unusable.")
        elif llm:
            summary = _("AI analysis unavailable (%(error)s); scored by rules.", error=llm["error"])
        else:
            summary = _(
                "Scored by rules: completeness %(c)s, clarity %(cl)s, engagement %(e)s. "
                "%(missing)s",
                c=int(completeness["score"]),
                cl=int(clarity["score"]),
                e=int(engagement["score"]),
                missing=completeness["analysis"],
            )
        result = llm and llm["result"]
        return {
            "calculated_score": calculated,
            "completeness": completeness,
            "clarity": clarity,
            "engagement": engagement,
            "weights": weights,
            "method": "llm" if analysis else ("fallback" if llm and llm["unusable"] else "rules"),
            "summary": summary,
            "analysis": analysis,
            "failed": failed,
            "deferred_until": deferred or None,
            "not_sent": not_sent,
            "error": llm["error"] if llm else None,
            "sent": llm["sent"] if llm else None,
            "llm": result
            and {
                "provider": result.get("provider"),
                "provider_id": result.get("provider_id"),
                "model": result.get("model"),
                "success": bool(analysis),
                "error": llm["error"],
                "error_kind": result.get("error_kind"),
                "tokens_in": result.get("tokens_in"),
                "tokens_out": result.get("tokens_out"),
                "latency_ms": result.get("latency_ms"),
                "tried": [t["provider"] for t in result.get("tried", ())],
            },
        }
