import re

from odoo import api, models
from odoo.tools import SQL, html2plaintext
from odoo.tools.sql import create_index

# the text searched, per table: expression indexes (GIN) over exactly these expressions keep
# the search up to date with every write, without a stored column or a trigger. The 'simple'
# configuration (no stemming, no stop words) treats every language of the CRM alike.
LEAD_COLUMNS = ("name", "partner_name", "contact_name", "email_from", "description")
PARTNER_COLUMNS = ("name", "email", "commercial_company_name")
MESSAGE_COLUMNS = ("subject", "body")


def document(columns, alias=None):
    """The indexed expression of ``columns`` (qualified by ``alias`` in queries: PostgreSQL
    matches the index whatever the qualification)."""
    prefix = '"%s".' % alias if alias else ""
    parts = " || ' ' || ".join("COALESCE(%s%s, '')" % (prefix, column) for column in columns)
    return "to_tsvector('simple', %s)" % parts


MESSAGE_WHERE = "model = 'crm.lead'"
MAX_TERMS = 8
SNIPPET_CHARS = 240
LEAD_HITS = 8
PARTNER_HITS = 4
MESSAGE_HITS = 8
# lead messages: the newest among the first CANDIDATES matches found (sorting every match of
# a common word over a million messages by date costs seconds)
CANDIDATES = 200
# words of a question that say nothing about what is searched
STOP_WORDS = frozenset(
    "a an and any about are by find for from in is leads lead me mention mentions mentioning "
    "of on or search show that the to which who with".split()
)


class CrmCopilot(models.AbstractModel):
    """Retrieval: PostgreSQL full-text search over leads, contacts and the chatter of leads
    (messages and notes), for the user's companies and record rules, at query time."""

    _inherit = "crm.copilot"

    def init(self):
        create_index(
            self.env.cr, "crm_lead_copilot_fts_idx", "crm_lead", [document(LEAD_COLUMNS)], "gin"
        )
        create_index(
            self.env.cr,
            "res_partner_copilot_fts_idx",
            "res_partner",
            [document(PARTNER_COLUMNS)],
            "gin",
        )
        create_index(
            self.env.cr,
            "mail_message_copilot_fts_idx",
            "mail_message",
            [document(MESSAGE_COLUMNS)],
            "gin",
            where=MESSAGE_WHERE,
        )

    @api.model
    def _copilot_tsquery(self, text):
        """A prefix query matching every meaningful word of ``text`` (None: nothing to find)."""
        words = [w for w in re.findall(r"\w+", (text or "").lower()) if w not in STOP_WORDS]
        words = [w for w in words if len(w) > 1][:MAX_TERMS]
        return " & ".join("%s:*" % w for w in words) or None

    @api.model
    def _copilot_search(self, text):
        """Leads, contacts and lead messages matching ``text`` that the user can read.

        Each search is an ORM ``_search`` (record rules and allowed companies) with the
        full-text condition added; messages are those of the leads the user can read.
        :return list: [{"model", "id", "name", "snippet"}], leads first
        """
        tsquery = self._copilot_tsquery(text)
        if not tsquery:
            return []
        Lead = self.env["crm.lead"]
        Lead.flush_model()
        self.env["res.partner"].flush_model(["name", "email", "commercial_company_name"])
        self.env["mail.message"].flush_model(["model", "res_id", "subject", "body"])
        match = SQL("to_tsquery('simple', %s)", tsquery)
        query = Lead._search([])
        lead_document = SQL(document(LEAD_COLUMNS, query.table))
        query.add_where(SQL("%s @@ %s", lead_document, match))
        query.order = SQL(
            "ts_rank(%s, %s) DESC, %s DESC", lead_document, match, SQL.identifier(query.table, "id")
        )
        query.limit = LEAD_HITS
        lead_ids = list(query)
        partners = self.env["res.partner"]._search([])
        partners.add_where(SQL("%s @@ %s", SQL(document(PARTNER_COLUMNS, partners.table)), match))
        partners.limit = PARTNER_HITS
        partner_ids = list(partners)
        self.env.cr.execute(
            SQL(
                """SELECT id, res_id FROM (
                       SELECT m.id, m.res_id, m.date FROM mail_message m
                        WHERE %s AND %s @@ %s AND m.res_id IN %s LIMIT %s
                   ) candidates ORDER BY date DESC, id DESC LIMIT %s""",
                SQL(MESSAGE_WHERE.replace("model", "m.model")),
                SQL(document(MESSAGE_COLUMNS, "m")),
                match,
                Lead._search([]).subselect(),
                CANDIDATES,
                MESSAGE_HITS,
            )
        )
        message_rows = self.env.cr.fetchall()
        hits = []
        for lead in Lead.browse(lead_ids):
            text_ = html2plaintext(lead.description or "") or lead.partner_name or ""
            hits.append(self._copilot_hit(lead, text_))
        leads_of_messages = Lead.browse([res_id for _id, res_id in message_rows])
        messages = self.env["mail.message"].sudo().browse([mid for mid, _r in message_rows])
        for message, lead in zip(messages, leads_of_messages, strict=True):
            # readable: the lead was found through the user's record rules above
            hit = self._copilot_hit(lead, html2plaintext(message.body or ""))
            hit["source"] = "message"
            hits.append(hit)
        for partner in self.env["res.partner"].browse(partner_ids):
            hits.append(self._copilot_hit(partner, partner.email or ""))
        return hits

    @api.model
    def _copilot_hit(self, record, text):
        text = " ".join((text or "").split())
        return {
            "model": record._name,
            "id": record.id,
            "name": record.display_name,
            "snippet": text[:SNIPPET_CHARS],
            "source": "record",
        }
