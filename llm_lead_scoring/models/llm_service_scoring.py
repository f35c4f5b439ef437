import functools
import time

from odoo import _, api, fields, models
from odoo.tools import html2plaintext

from ..lib import answers, privacy, prompts, rules, transport

COMPONENTS = ("completeness", "clarity", "engagement")
# research runs in the user's request: all providers together stay far from Odoo's
# limit_time_real (120 s), whatever their timeouts and the failover
RESEARCH_DEADLINE_SECONDS = 45


class LlmService(models.AbstractModel):
    """What the suite asks the gateway about leads: their facts and engagement, the
    analysis of one lead, and the scoring of many."""

    _inherit = "llm.service"

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
        result = self._request(
            "research",
            messages,
            system_prompt=system,
            record=lead,
            deadline=time.monotonic() + RESEARCH_DEADLINE_SECONDS,
        )
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
                # a summary or next action that only repeats this data is refused
                "validate": functools.partial(
                    answers.parse_analysis, data_texts=prompts.payload_texts(sent)
                ),
                "record": lead,
                # "Score with AI": the call is the asking user's, in the AI call log
                "user_id": lead.ai_requested_by.id,
            }
        results = self._request_many(
            "scoring",
            jobs,
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
