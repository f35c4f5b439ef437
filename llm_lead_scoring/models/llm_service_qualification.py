import json

from odoo import api, models
from odoo.tools import SQL, html2plaintext

from ..lib import qualification

MAX_INBOUND_MESSAGES = 3  # the latest inbound messages sent with the lead
MAX_INBOUND_CHARS = 500  # each, cut


class LlmService(models.AbstractModel):
    """The BANT scorecard in the scoring: the latest inbound messages join the lead's facts
    (rules and prompt), and each outcome carries the scorecard proposed by the LLM (checked
    against the text sent) or by the rules."""

    _inherit = "llm.service"

    # ------------------------------------------------------------
    # LEAD FACTS
    # ------------------------------------------------------------

    @api.model
    def _score_leads(self, leads, use_llm=True, deadline=None):
        # the scoring (rules and prompt) reads the inbound messages; drafting and research
        # keep their own chatter context
        return super(LlmService, self.with_context(ai_facts_inbound=True))._score_leads(
            leads, use_llm=use_llm, deadline=deadline
        )

    @api.model
    def _lead_facts(self, leads):
        facts = super()._lead_facts(leads)
        if not self.env.context.get("ai_facts_inbound"):
            return facts
        for lead_id, texts in self._inbound_texts(leads.ids).items():
            if lead_id in facts and texts:
                facts[lead_id]["inbound_messages"] = texts
        return facts

    @api.model
    def _inbound_texts(self, lead_ids):
        """{lead_id: [plain texts]} of the latest inbound messages (e-mails and comments
        written by someone who is not an internal user, internal notes left out), oldest
        first, in one query whatever the number of leads."""
        if not lead_ids:
            return {}
        self.env["mail.message"].flush_model()
        self.env.cr.execute(
            SQL(
                """
                SELECT res_id, body FROM (
                    SELECT m.res_id, m.body, m.date, m.id,
                           ROW_NUMBER() OVER (PARTITION BY m.res_id
                                              ORDER BY m.date DESC, m.id DESC) AS rank
                      FROM mail_message m
                 LEFT JOIN mail_message_subtype st ON st.id = m.subtype_id
                     WHERE m.model = 'crm.lead' AND m.res_id = ANY(%s)
                       AND m.message_type IN ('email', 'comment')
                       AND NOT COALESCE(m.is_internal, FALSE)
                       AND NOT COALESCE(st.internal, FALSE)
                       AND NOT EXISTS (SELECT 1 FROM res_users u
                                        WHERE u.partner_id = m.author_id
                                          AND u.share IS NOT TRUE)
                ) latest
                 WHERE rank <= %s
              ORDER BY res_id, date, id""",
                list(lead_ids),
                MAX_INBOUND_MESSAGES,
            )
        )
        texts = {}
        for res_id, body in self.env.cr.fetchall():
            text = html2plaintext(body or "").strip()[:MAX_INBOUND_CHARS]
            if text:
                texts.setdefault(res_id, []).append(text)
        return texts

    # ------------------------------------------------------------
    # QUALIFICATION
    # ------------------------------------------------------------

    def _outcome(self, facts, counts, weights, llm):
        outcome = super()._outcome(facts, counts, weights, llm)
        texts = [facts.get("description") or ""] + list(facts.get("inbound_messages") or ())
        items = {
            item: {"state": state, "evidence": evidence, "by": "rules"}
            for item, (state, evidence) in qualification.from_rules(texts).items()
        }
        analysis = outcome["analysis"]
        if analysis and analysis.get("qualification"):
            # the evidence must be in the text the provider received (privacy and caps
            # applied), not merely somewhere in the lead
            sent = self._qualification_sent_texts(outcome["sent"])
            for item, (state, evidence) in qualification.check_llm(
                analysis["qualification"], sent
            ).items():
                items[item] = {"state": state, "evidence": evidence, "by": "llm"}
        outcome["qualification"] = items
        return outcome

    @api.model
    def _qualification_sent_texts(self, sent):
        """The description and messages inside the lead data sent (the JSON between the
        <lead_data> markers); the whole text sent when it cannot be read back."""
        if not sent:
            return []
        start, end = sent.find("<lead_data>"), sent.rfind("</lead_data>")
        if start >= 0 and end > start:
            try:
                data = json.loads(sent[start + len("<lead_data>") : end])
            except ValueError:
                data = None
            if isinstance(data, dict):
                messages = data.get("inbound_messages")
                return [str(data.get("description") or "")] + [
                    str(m) for m in (messages if isinstance(messages, list) else ())
                ]
        return [sent]
