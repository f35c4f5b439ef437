import hashlib

from odoo import api, fields, models
from odoo.tools import SQL


class CrmExecutiveDashboardNorm(models.Model):
    """The per-stage norms of won deals (Bottlenecks page, sales agent's "stuck in stage"),
    kept for the day they were learned: one computation per day and scope (the won deals'
    query as the user runs it: his record rules, companies, team and salesperson filters, the
    window), then a read. Forgotten when a deal is won or reopened (``crm.lead.write``), when
    leads are merged or the stage history rebuilt; rows of earlier days are deleted at the next
    computation. Other edits of won deals (archiving one, changing its closing date, team or
    salesperson) show the next day. Read and written as superuser by the dashboard only, with
    the key of the caller's own query."""

    _name = "crm.executive.dashboard.norm"
    _description = "Dashboard Stage Norms (daily)"
    _order = "id desc"

    key = fields.Char(required=True, index=True, help="Fingerprint of the won deals' query.")
    day = fields.Date(required=True, help="The day (UTC) the norms were learned.")
    norms = fields.Json(help="{stage id: {median, p75, p90, deals}} in days.")

    @api.model
    def _key(self, sql):
        """A fingerprint of a query: its SQL and parameters."""
        return hashlib.sha256(repr((sql.code, sql.params)).encode()).hexdigest()

    @api.model
    def _get_or_compute(self, sql, compute):
        """The norms of today for the query ``sql``, computed by ``compute()`` the first time
        of the day. One query when known, three more the first time."""
        key = self._key(sql)
        today = fields.Date.today()
        known = self.search_fetch([("key", "=", key), ("day", "=", today)], ["norms"], limit=1)
        if known:
            # (no norm at all is stored as NULL)
            return {int(stage): norm for stage, norm in (known.norms or {}).items()}
        norms = compute()
        self.env.cr.execute(
            SQL("DELETE FROM %s WHERE day < %s", SQL.identifier(self._table), today)
        )
        self.create({"key": key, "day": today, "norms": norms})
        return norms

    @api.model
    def _invalidate_norms(self):
        """Forget the norms learned (the stage history they came from changed)."""
        self.env.cr.execute(SQL("DELETE FROM %s", SQL.identifier(self._table)))
        self.invalidate_model()
