import logging
from concurrent.futures import ThreadPoolExecutor

from odoo import _, api, fields, models, tools
from odoo.tools import html2plaintext

from ..lib import answers, prompts, rules, transport

_logger = logging.getLogger(__name__)

COMPONENTS = ("completeness", "clarity", "engagement")


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
    # CALLS
    # ------------------------------------------------------------

    @api.model
    def call_llm(self, messages, provider=None, system_prompt=None):
        """Call one provider (the default one when not given); never raises for network or
        provider errors.

        :return dict: success, content, error, provider, latency_ms, tokens_in, tokens_out
        """
        provider = (provider or self.env["llm.provider"].get_default_provider()).sudo()
        if not provider:
            return self._no_provider_result()
        result = transport.execute(provider._prepare_request(messages, system_prompt))
        self._record_usage([result])
        return self._public_result(result)

    @api.model
    def call_llm_with_failover(self, messages, system_prompt=None, company=None):
        """Call the default provider, then the others by sequence until one answers."""
        providers = self._providers(company)
        if not providers:
            return self._no_provider_result()
        result = transport.execute_with_failover(
            [p._prepare_request(messages, system_prompt) for p in providers]
        )
        self._record_usage([result])
        return self._public_result(result)

    def _no_provider_result(self):
        return {
            "success": False,
            "content": None,
            "error": _("No LLM provider is configured."),
            "provider": None,
            "latency_ms": 0,
            "tokens_in": 0,
            "tokens_out": 0,
        }

    def _public_result(self, result):
        keys = (
            "success",
            "content",
            "error",
            "provider",
            "provider_id",
            "latency_ms",
            "tokens_in",
            "tokens_out",
            "error_kind",
        )
        return {key: result.get(key) for key in keys}

    @api.model
    def _record_usage(self, results, invalid_provider_ids=()):
        """Add the usage of many transport results to their providers in one UPDATE each.

        :param invalid_provider_ids: providers whose successful answer turned out unusable
        """
        usage = {}
        for result in results:
            for call in result.get("tried") or [result]:
                if not call.get("provider_id"):
                    continue
                entry = usage.setdefault(
                    call["provider_id"],
                    dict.fromkeys(
                        (
                            "requests",
                            "failures",
                            "invalid_answers",
                            "tokens_in",
                            "tokens_out",
                            "latency_ms",
                        ),
                        0,
                    ),
                )
                entry["requests"] += 1
                entry["tokens_in"] += call.get("tokens_in") or 0
                entry["tokens_out"] += call.get("tokens_out") or 0
                if call.get("success"):
                    entry["latency_ms"] += call.get("latency_ms") or 0
                else:
                    entry["failures"] += 1
                    entry["last_error"] = call.get("error")
                    if call.get("error_kind") == transport.ERR_INVALID:
                        entry["invalid_answers"] += 1
        for provider_id in invalid_provider_ids:
            if provider_id in usage:
                usage[provider_id]["invalid_answers"] += 1
                usage[provider_id]["last_error"] = _("Unusable answer")
        if usage:
            self.env["llm.provider"].sudo()._increment_usage_batch(usage)

    @api.model
    def health_check(self, company=None):
        """Ping the providers in failover order.

        :return dict: status healthy (default answers) / degraded (a fallback answers) /
            critical (none answers, or none configured), message, provider, timestamp
        """
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
            result = self.call_llm(messages, provider=provider)
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
    # ANALYSIS (one lead, callable from odoo-bin shell)
    # ------------------------------------------------------------

    @api.model
    def analyze_lead_completeness(self, lead):
        return rules.completeness(self._lead_facts(lead)[lead.id])

    @api.model
    def analyze_requirement_clarity(self, lead):
        """Rules by default; the LLM judges clarity when a provider answers usably."""
        facts = self._lead_facts(lead)[lead.id]
        result = rules.clarity(facts["description"])
        if self._provider_ids(lead.company_id or None) and facts["description"]:
            llm = self._llm_analyze(lead, facts)
            if llm.get("analysis"):
                result = {
                    "score": llm["analysis"]["clarity"],
                    "analysis": llm["analysis"]["summary"],
                    "signals": result["signals"],
                    "method": "llm",
                }
        return result

    @api.model
    def analyze_activity_engagement(self, lead):
        counts = self._engagement_counts(lead.ids)[lead.id]
        return rules.engagement(**self._engagement_args(counts))

    @api.model
    def calculate_ai_probability_score(self, lead):
        """Component scores and analyses, the weighted score and the LLM's analysis."""
        return self._score_leads(lead)[lead.id]

    @api.model
    def research_customer(self, lead):
        """What the lead's own data says about the customer company (setting-gated)."""
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
        return self.call_llm_with_failover(
            messages, system_prompt=system, company=lead.company_id or None
        )

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

    def _llm_analyze(self, lead, facts):
        """Synchronous LLM analysis of one lead (used by the shell helpers)."""
        return self._run_llm(
            {lead.id: facts}, self._get_config(lead.company_id or None), lead.company_id or None
        )[lead.id]

    # ------------------------------------------------------------
    # BATCH SCORING
    # ------------------------------------------------------------

    @api.model
    def _score_leads(self, leads, use_llm=True):
        """Score many leads: rules in bulk, LLM calls concurrently in worker threads.

        Prompts are built and results read in this thread; worker threads only do HTTP.
        :return dict: {lead_id: outcome} (see ``_outcome``)
        """
        if not leads:
            return {}
        config = self._get_config(leads[:1].company_id or None)
        weights = {c: config["weight_" + c] for c in COMPONENTS}
        facts = self._lead_facts(leads)
        counts = self._engagement_counts(leads.ids)
        llm = {}
        if use_llm:
            by_company = {}
            for lead in leads:
                by_company.setdefault(lead.company_id, {})[lead.id] = facts[lead.id]
            for company, company_facts in by_company.items():
                if self._provider_ids(company or None):
                    llm.update(self._run_llm(company_facts, config, company or None))
        return {
            lead.id: self._outcome(facts[lead.id], counts[lead.id], weights, llm.get(lead.id))
            for lead in leads
        }

    def _run_llm(self, facts_by_lead, config, company):
        """LLM analysis of many leads: {lead_id: {sent, result, analysis, error}}."""
        providers = self._providers(company)
        jobs = {}
        sent_by_lead = {}
        for lead_id, facts in facts_by_lead.items():
            sent = prompts.lead_payload(
                facts, config["max_prompt_chars"], config["exclude_personal_data"]
            )
            system, messages = prompts.build_messages(sent)
            sent_by_lead[lead_id] = sent
            jobs[lead_id] = [p._prepare_request(messages, system) for p in providers]
        workers = min(config["concurrency"], len(jobs)) or 1
        if workers == 1:
            results = {
                lead_id: transport.execute_with_failover(reqs) for lead_id, reqs in jobs.items()
            }
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm") as pool:
                futures = {
                    lead_id: pool.submit(transport.execute_with_failover, reqs)
                    for lead_id, reqs in jobs.items()
                }
                results = {lead_id: future.result() for lead_id, future in futures.items()}
        out = {}
        invalid = []
        for lead_id, result in results.items():
            entry = {
                "sent": sent_by_lead[lead_id],
                "result": result,
                "analysis": None,
                "error": None,
                "unusable": False,
            }
            if result["success"]:
                try:
                    entry["analysis"] = answers.parse_analysis(result["content"])
                except answers.UnusableAnswer as exc:
                    entry.update(error=str(exc), unusable=True)
                    invalid.append(result["provider_id"])
            else:
                entry["error"] = result["error"]
                entry["unusable"] = any(
                    t["error_kind"] == transport.ERR_INVALID for t in result.get("tried", ())
                )
            out[lead_id] = entry
        self._record_usage(list(results.values()), invalid_provider_ids=invalid)
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
        # transport failure (not an unusable answer): keep rule scores, retry later
        failed = bool(llm and not analysis and not llm["unusable"])
        if analysis:
            summary = analysis["summary"]
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
            "method": "llm" if analysis else "rules",
            "summary": summary,
            "analysis": analysis,
            "failed": failed,
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
