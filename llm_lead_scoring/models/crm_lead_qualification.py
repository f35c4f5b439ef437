from psycopg2.extras import execute_values

from odoo import api, fields, models
from odoo.tools import SQL
from odoo.tools.sql import column_exists

from ..lib import qualification

BANT_STATES = [("unknown", "Unknown"), ("partly", "Partly"), ("confirmed", "Confirmed")]
BANT_BY = [("rules", "Rules"), ("llm", "AI"), ("manual", "Salesperson")]
# the columns of one item: state, evidence, set by
BANT_COLUMNS = {
    item: ("ai_bant_%s" % item, "ai_bant_%s_evidence" % item, "ai_bant_%s_by" % item)
    for item in qualification.ITEMS
}
BANT_EDITABLE = frozenset(c for columns in BANT_COLUMNS.values() for c in columns[:2])
_ALL_COLUMNS = [c for item in qualification.ITEMS for c in BANT_COLUMNS[item]]
# one UPDATE for a batch of scorecards (names from the constants above, values as VALUES)
_BANT_UPDATE = (
    "UPDATE crm_lead l SET %s, ai_qualification_status = v.status "
    "FROM (VALUES %%s) AS v(id, %s, status) WHERE l.id = v.id"
    % (", ".join("%s = v.%s" % (c, c) for c in _ALL_COLUMNS), ", ".join(_ALL_COLUMNS))
)


class CrmLead(models.Model):
    """The BANT qualification scorecard of a lead: budget, authority, need and timeline,
    each unknown / partly / confirmed with the sentence it was taken from; proposed by each
    scoring (LLM, else rules), never over a salesperson's own edit."""

    _inherit = "crm.lead"

    # Qualification (BANT)
    ai_bant_budget = fields.Selection(BANT_STATES, string="Budget", default="unknown", copy=False)
    ai_bant_budget_evidence = fields.Char(string="Budget Evidence", copy=False)
    ai_bant_budget_by = fields.Selection(BANT_BY, string="Budget Set By", copy=False)
    ai_bant_authority = fields.Selection(
        BANT_STATES, string="Authority", default="unknown", copy=False
    )
    ai_bant_authority_evidence = fields.Char(string="Authority Evidence", copy=False)
    ai_bant_authority_by = fields.Selection(BANT_BY, string="Authority Set By", copy=False)
    ai_bant_need = fields.Selection(BANT_STATES, string="Need", default="unknown", copy=False)
    ai_bant_need_evidence = fields.Char(string="Need Evidence", copy=False)
    ai_bant_need_by = fields.Selection(BANT_BY, string="Need Set By", copy=False)
    ai_bant_timeline = fields.Selection(
        BANT_STATES, string="Timeline", default="unknown", copy=False
    )
    ai_bant_timeline_evidence = fields.Char(string="Timeline Evidence", copy=False)
    ai_bant_timeline_by = fields.Selection(BANT_BY, string="Timeline Set By", copy=False)
    ai_qualification_status = fields.Selection(
        [
            ("unqualified", "Unqualified"),
            ("partly", "Partly qualified"),
            ("qualified", "Qualified"),
        ],
        string="Qualification",
        compute="_compute_ai_qualification_status",
        store=True,
        help="From the BANT scorecard, 2 points per confirmed item and 1 per partly known one: "
        "qualified with 7 or 8 points (at most one item only partly), unqualified with 2 or "
        "less, partly qualified in between.",
    )
    ai_what_would_move = fields.Text(
        string="What Would Move It",
        compute="_compute_ai_what_would_move",
        help="The changes a salesperson can make that raise the learned win probability the "
        "most, one at a time, with the probability before and after. Empty without a "
        "published model.",
    )

    @api.depends("ai_bant_budget", "ai_bant_authority", "ai_bant_need", "ai_bant_timeline")
    def _compute_ai_qualification_status(self):
        for lead in self:
            lead.ai_qualification_status = qualification.status(
                [lead[BANT_COLUMNS[item][0]] for item in qualification.ITEMS]
            )

    def _compute_ai_what_would_move(self):
        """Batched: one feature query and one model search per company, whatever the number
        of leads (see llm.scoring.model._what_would_move)."""
        Model = self.env["llm.scoring.model"].sudo()
        moves = {}
        by_company = {}
        for lead in self:
            if lead.id:
                by_company.setdefault(lead.company_id or self.env.company, []).append(lead.id)
        for company, lead_ids in by_company.items():
            moves.update(Model._what_would_move(company, lead_ids))
        for lead in self:
            lead.ai_what_would_move = moves.get(lead.id) or False

    # ------------------------------------------------------------
    # ORM
    # ------------------------------------------------------------

    def _auto_init(self):
        """On an existing database, the four states and the status are created with their
        value for every lead (unknown, unqualified) as a column default that is dropped at
        once: PostgreSQL keeps such a value in the catalog without rewriting the table (an
        UPDATE of a million leads took 14 minutes), and new leads get Odoo's defaults."""
        values = {BANT_COLUMNS[item][0]: "unknown" for item in qualification.ITEMS}
        values["ai_qualification_status"] = "unqualified"
        for column, value in values.items():
            if not column_exists(self.env.cr, "crm_lead", column):
                self.env.cr.execute(
                    SQL(
                        "ALTER TABLE crm_lead ADD COLUMN %s varchar DEFAULT %s; "
                        "ALTER TABLE crm_lead ALTER COLUMN %s DROP DEFAULT",
                        SQL.identifier(column),
                        value,
                        SQL.identifier(column),
                    )
                )
        return super()._auto_init()

    def write(self, vals):
        """A salesperson's edit of an item (its state or evidence) marks it as theirs: the
        next scoring leaves it alone."""
        edited = BANT_EDITABLE.intersection(vals)
        if edited and not self.env.context.get("ai_bant_from_scoring"):
            vals = dict(vals)
            for state, evidence, by in BANT_COLUMNS.values():
                if state in edited or evidence in edited:
                    vals.setdefault(by, "manual")
        return super().write(vals)

    # ------------------------------------------------------------
    # BUSINESS
    # ------------------------------------------------------------

    @api.model
    def _ai_learned_predictions(self, leads, outcomes):
        # the scorecard is written first: it is a feature of the win probability
        self._ai_write_qualification(leads, outcomes)
        return super()._ai_learned_predictions(leads, outcomes)

    @api.model
    def _ai_write_qualification(self, leads, outcomes):
        """Write the scorecard of each outcome on its lead in one UPDATE, item by item,
        except the items a salesperson set (by = manual)."""
        # the status too: a pending computation (of a new lead) must not be flushed after
        # the UPDATE, over it
        self.flush_model(_ALL_COLUMNS + ["ai_qualification_status"])
        updates = []
        for lead in leads:
            outcome = outcomes.get(lead.id) or {}
            proposal = outcome.get("qualification")
            if not proposal or outcome.get("not_sent"):
                continue
            values = []
            for item in qualification.ITEMS:
                state, evidence, by = BANT_COLUMNS[item]
                if lead[by] == "manual":
                    values += [lead[state] or "unknown", lead[evidence] or None, "manual"]
                else:
                    new = proposal[item]
                    values += [new["state"], new["evidence"] or None, new["by"]]
            states = values[0::3]
            updates.append((lead.id, *values, qualification.status(states)))
        if not updates:
            return
        execute_values(self.env.cr._obj, _BANT_UPDATE, updates, page_size=1000)
        self.browse([u[0] for u in updates]).invalidate_recordset(
            _ALL_COLUMNS + ["ai_qualification_status"]
        )
