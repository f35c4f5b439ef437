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
# the search reads active leads only (``_search``): archived ones stay out of the index
LEAD_WHERE = "active"
# the indexes above, dropped by the uninstall hook (hooks.py)
FTS_INDEXES = (
    "crm_lead_copilot_fts_active_idx",
    "res_partner_copilot_fts_idx",
    "mail_message_copilot_fts_idx",
)
# indexes of earlier versions, dropped at the update and by the uninstall hook
OLD_FTS_INDEXES = ("crm_lead_copilot_fts_idx",)
MAX_TERMS = 8
# shorter words match exactly, longer ones as prefixes ("pric" finds "pricing")
PREFIX_MIN_CHARS = 3
SNIPPET_CHARS = 240
LEAD_HITS = 8
PARTNER_HITS = 4
MESSAGE_HITS = 8
# leads: the best ranked among the first CANDIDATES readable matches the index gives; lead
# messages: the newest among them. Ranking or sorting every match of a common word costs
# seconds over a million records (the text of each one is read and parsed again): a common
# word gets a sample of its matches, more words narrow it down.
CANDIDATES = 200
# memory of each bitmap of the search: exact (not lossy) over a million rows
SEARCH_WORK_MEM = "64MB"
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
        for name in OLD_FTS_INDEXES:
            self.env.cr.execute(SQL("DROP INDEX IF EXISTS %s", SQL.identifier(name)))
        create_index(
            self.env.cr,
            "crm_lead_copilot_fts_active_idx",
            "crm_lead",
            [document(LEAD_COLUMNS)],
            "gin",
            where=LEAD_WHERE,
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
        words = [w for w in re.findall(r"[^\W_]+", (text or "").lower()) if w not in STOP_WORDS]
        words = [w for w in words if len(w) > 1][:MAX_TERMS]
        return " & ".join("%s:*" % w if len(w) >= PREFIX_MIN_CHARS else w for w in words) or None

    @api.model
    def _copilot_search(self, text):
        """Leads, contacts and lead messages matching ``text`` that the user can read.

        Each search is an ORM ``_search`` (record rules and allowed companies, applied by
        PostgreSQL at query time) with the full-text condition added; messages are those of
        the leads the user can read. Each takes at most CANDIDATES matches from its GIN index
        before ranking or sorting them (see CANDIDATES).

        :return list: [{"model", "id", "name", "snippet", "source"}], leads first
        """
        tsquery = self._copilot_tsquery(text)
        if not tsquery:
            return []
        Lead = self.env["crm.lead"]
        Lead.flush_model()
        self.env["res.partner"].flush_model(PARTNER_COLUMNS)
        self.env["mail.message"].flush_model(["model", "res_id", "subject", "body", "date"])
        match = SQL("to_tsquery('simple', %s)", tsquery)
        # the matches come from the GIN indexes only: PostgreSQL underestimates the cost of
        # parsing a text again (to_tsvector, tens of microseconds a row) and the number of
        # matches of a prefix, so it would rather scan the table or another index and test
        # each row, for seconds when a word is common and the user's leads few. Memory for
        # exact bitmaps: a lossy one (a common word, or the user's leads, over a million
        # rows) makes PostgreSQL read whole pages and parse every text of them again. No
        # parallel workers: starting one costs more than these small LIMIT queries
        with self.env["crm.executive.dashboard"]._planner(
            enable_seqscan="off",
            enable_indexscan="off",
            max_parallel_workers_per_gather=0,
            work_mem=SEARCH_WORK_MEM,
        ):
            lead_ids = self._copilot_ranked(Lead, LEAD_COLUMNS, match, LEAD_HITS)
            partner_ids = self._copilot_ranked(
                self.env["res.partner"], PARTNER_COLUMNS, match, PARTNER_HITS
            )
            message_rows = self._copilot_lead_messages(match)
        hits = []
        for lead in Lead.browse(lead_ids):
            text_ = html2plaintext(lead.description or "") or lead.partner_name or ""
            hits.append(self._copilot_hit(lead, text_))
        leads_of_messages = Lead.browse([res_id for _id, res_id in message_rows])
        messages = self.env["mail.message"].sudo().browse([mid for mid, _r in message_rows])
        for message, lead in zip(messages, leads_of_messages, strict=True):
            # readable: the lead was found through the user's record rules
            hit = self._copilot_hit(lead, html2plaintext(message.body or ""))
            hit["source"] = "message"
            hits.append(hit)
        for partner in self.env["res.partner"].browse(partner_ids):
            hits.append(self._copilot_hit(partner, partner.email or ""))
        return hits

    @api.model
    def _copilot_ranked(self, model, columns, match, limit):
        """Ids of the ``limit`` best ranked records of ``model`` the user can read among the
        first CANDIDATES that match (``ts_rank``, then newest first)."""
        query = model._search([])
        table = query.table
        doc = SQL(document(columns, table))
        query.add_where(SQL("%s @@ %s", doc, match))
        query.order = None
        query.limit = CANDIDATES
        self.env.cr.execute(
            SQL(
                """SELECT id FROM (%s) candidates
                    ORDER BY ts_rank(candidates.doc, %s) DESC, id DESC LIMIT %s""",
                query.select(SQL("%s AS id", SQL.identifier(table, "id")), SQL("%s AS doc", doc)),
                match,
                limit,
            )
        )
        return [row[0] for row in self.env.cr.fetchall()]

    @api.model
    def _copilot_lead_messages(self, match):
        """``[(message id, lead id)]``: the newest lead messages among the first CANDIDATES
        that match, on leads the user can read (``crm.lead._search``: record rules)."""
        readable = self.env["crm.lead"]._search([])
        readable.add_where(SQL("%s = m.res_id", SQL.identifier(readable.table, "id")))
        self.env.cr.execute(
            SQL(
                """SELECT id, res_id FROM (
                       SELECT m.id, m.res_id, m.date FROM mail_message m
                        WHERE %s AND %s @@ %s AND EXISTS(%s) LIMIT %s
                   ) candidates ORDER BY date DESC, id DESC LIMIT %s""",
                SQL(MESSAGE_WHERE.replace("model", "m.model")),
                SQL(document(MESSAGE_COLUMNS, "m")),
                match,
                readable.select(SQL("1")),
                CANDIDATES,
                MESSAGE_HITS,
            )
        )
        return self.env.cr.fetchall()

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
