import logging
import threading
from datetime import timedelta

from dateutil.relativedelta import relativedelta

from odoo import _, api, fields, models
from odoo.tools import SQL

from ..lib import budget as budget_lib

_logger = logging.getLogger(__name__)

PURPOSES = [
    ("scoring", "Lead Scoring"),
    ("research", "Customer Research"),
    ("tone", "Message Tone"),
    ("drafting", "Drafting"),
    ("assistant", "Assistant"),
    ("digest", "Dashboard Digest"),
    ("test", "Connection Test"),
]
OUTCOMES = [("ok", "OK"), ("invalid", "Invalid Answer"), ("error", "Error")]
ERROR_KINDS = [
    ("auth", "Authentication"),
    ("refused", "Refused"),
    ("rate_limited", "Rate Limited"),
    ("timeout", "Timeout"),
    ("connection", "Connection"),
    ("server", "Server Error"),
    ("invalid_answer", "Invalid Answer"),
]


class LlmCallLog(models.Model):
    """One row per call to an LLM provider, written by the gateway (``llm.service``):
    who, for what, on which record, what was sent after redaction, what it cost."""

    _name = "llm.call.log"
    _description = "AI Call Log"
    _order = "date desc, id desc"
    _rec_name = "purpose"
    _log_access = False  # written by the gateway alone; ``date`` and ``user_id`` say it all

    date = fields.Datetime(required=True, default=fields.Datetime.now, index=True, readonly=True)
    user_id = fields.Many2one(
        "res.users", string="User", default=lambda self: self.env.uid, index=True, readonly=True
    )
    company_id = fields.Many2one("res.company", string="Company", required=True, readonly=True)
    purpose = fields.Selection(PURPOSES, required=True, readonly=True)
    res_model = fields.Char(string="Document Model", readonly=True)
    res_id = fields.Many2oneReference(
        string="Document ID", model_field="res_model", readonly=True, index="btree_not_null"
    )
    res_name = fields.Char(string="Document", readonly=True)
    provider_id = fields.Many2one(
        "llm.provider", string="Provider", ondelete="set null", index=True, readonly=True
    )
    model_name = fields.Char(string="Model", readonly=True)
    tokens_in = fields.Integer(string="Tokens In", readonly=True, group_operator="sum")
    tokens_out = fields.Integer(string="Tokens Out", readonly=True, group_operator="sum")
    cost = fields.Float(digits=(16, 6), readonly=True, group_operator="sum")
    latency_ms = fields.Integer(string="Latency (ms)", readonly=True, group_operator="avg")
    attempts = fields.Integer(readonly=True, group_operator="sum")
    outcome = fields.Selection(OUTCOMES, required=True, readonly=True, index=True)
    error_kind = fields.Selection(ERROR_KINDS, readonly=True)
    error = fields.Char(readonly=True)
    error_detail = fields.Char(
        string="Provider's Answer",
        readonly=True,
        groups="sales_team.group_sale_manager",
        help="For managers: an excerpt of the provider's error answer, or of the model's "
        "answer when it was refused as unusable (truncated, no JSON, an echo...).",
    )
    content_sent = fields.Text(
        string="Sent (after redaction)",
        readonly=True,
        help="What left Odoo, after the privacy settings were applied (the system "
        "instructions of the suite are not repeated here).",
    )

    @api.depends("purpose", "res_name")
    def _compute_display_name(self):
        labels = dict(self._fields["purpose"]._description_selection(self.env))
        for log in self:
            log.display_name = " · ".join(filter(None, [labels.get(log.purpose), log.res_name]))

    def init(self):
        # the gateway reads a company's usage of the current month before every batch
        self.env.cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS llm_call_log_company_date_idx "
                "ON llm_call_log (company_id, date)"
            )
        )

    def action_open_document(self):
        """Open the record the call was made for (its own access rights apply)."""
        self.ensure_one()
        if not self.res_model or not self.res_id:
            return False
        return {
            "type": "ir.actions.act_window",
            "res_model": self.res_model,
            "res_id": self.res_id,
            "views": [(False, "form")],
        }

    @api.model
    def _record(self, vals_list):
        """Write the rows of calls made, in a transaction of their own: a call paid for stays
        in the log and counts in the budget even when the caller's transaction rolls back.
        (In a test transaction without registry test mode, the rows go with the test's
        transaction: another connection would not see the test's providers.)"""
        if not vals_list:
            return
        if getattr(threading.current_thread(), "testing", False) and not (
            self.env.registry.in_test_mode()
        ):
            self.sudo().create(vals_list)
            return
        with self.env.registry.cursor() as cr:
            self.with_env(self.env(cr=cr, su=True)).create(vals_list)

    @api.autovacuum
    def _gc_old_calls(self):
        """Purge the rows older than each company's retention (0: keep forever)."""
        now = fields.Datetime.now()
        self.flush_model(["date"])
        for company in self.env["res.company"].sudo().search([]):
            days = company.llm_log_retention_days
            if days > 0:
                self.env.cr.execute(
                    SQL(
                        "DELETE FROM llm_call_log WHERE company_id = %s AND date < %s",
                        company.id,
                        now - timedelta(days=days),
                    )
                )
                if self.env.cr.rowcount:
                    _logger.info(
                        "AI call log: %s rows older than %s days purged for company %s",
                        self.env.cr.rowcount,
                        days,
                        company.id,
                    )
        self.invalidate_model()

    # ------------------------------------------------------------
    # BUDGETS
    # ------------------------------------------------------------

    def _budget_windows(self, now=None):
        """Start of the windows the budgets count in (UTC): minute, day, month."""
        now = now or fields.Datetime.now()
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return {
            budget_lib.REQUESTS: now - timedelta(minutes=1),
            budget_lib.TOKENS: day,
            budget_lib.COST: day.replace(day=1),
        }

    def _budget_window_end(self, limits):
        """When the windows of the refusing ``limits`` end: the queued work waits till then."""
        now = fields.Datetime.now()
        starts = self._budget_windows(now)
        ends = {
            budget_lib.REQUESTS: now + timedelta(minutes=1),
            budget_lib.TOKENS: starts[budget_lib.TOKENS] + timedelta(days=1),
            budget_lib.COST: starts[budget_lib.COST] + relativedelta(months=1),
        }
        return max((ends[key] for key in limits), default=ends[budget_lib.REQUESTS])

    def _budget(self, company, config):
        """The company's budget with its usage so far, read from the audit log."""
        limits = {
            budget_lib.REQUESTS: config["budget_requests_per_minute"],
            budget_lib.TOKENS: config["budget_tokens_per_day"],
            budget_lib.COST: config["budget_monthly_cost"],
        }
        used = {}
        if any(limits.values()):
            starts = self._budget_windows()
            self.flush_model()
            self.env.cr.execute(
                SQL(
                    """SELECT COALESCE(SUM(attempts) FILTER (WHERE date > %s), 0),
                              COALESCE(SUM(tokens_in + tokens_out) FILTER (WHERE date >= %s), 0),
                              COALESCE(SUM(cost) FILTER (WHERE date >= %s), 0)
                         FROM llm_call_log
                        WHERE company_id = %s AND date >= LEAST(%s, %s)""",
                    starts[budget_lib.REQUESTS],
                    starts[budget_lib.TOKENS],
                    starts[budget_lib.COST],
                    company.id,
                    starts[budget_lib.REQUESTS],
                    starts[budget_lib.COST],
                )
            )
            keys = (budget_lib.REQUESTS, budget_lib.TOKENS, budget_lib.COST)
            used = dict(zip(keys, self.env.cr.fetchone(), strict=True))
        messages = {
            budget_lib.REQUESTS: _(
                "The AI budget of %(company)s allows %(n)s requests per minute; the call waits "
                "for the next minute.",
                company=company.name,
                n=limits[budget_lib.REQUESTS],
            ),
            budget_lib.TOKENS: _(
                "The AI budget of %(company)s (%(n)s tokens per day) is used up; the call "
                "waits for tomorrow.",
                company=company.name,
                n=limits[budget_lib.TOKENS],
            ),
            budget_lib.COST: _(
                "The monthly AI cost cap of %(company)s (%(n)s) is reached; the call waits "
                "for next month.",
                company=company.name,
                n=limits[budget_lib.COST],
            ),
        }
        return budget_lib.Budget(limits, used, messages)

    def _budget_warn(self, company, budget):
        """At 80 % of the daily tokens or the monthly cost (and at 100 %), an activity for
        the company's CRM managers, once per window and level."""
        starts = self._budget_windows()
        keys = []
        for limit, ratio in budget.ratios().items():
            if limit == budget_lib.REQUESTS or ratio < budget_lib.WARNING_RATIO:
                continue
            level = "100" if limit in budget.refused or ratio >= 1 else "80"
            keys.append((limit, level, "%s:%s:%s" % (limit, level, starts[limit].date())))
        sent = set((company.ai_budget_alert_key or "").split())
        new = [(limit, level, key) for limit, level, key in keys if key not in sent]
        if not new:
            return
        company.ai_budget_alert_key = " ".join(sorted(sent | {k for _l, _v, k in new})[-6:])
        provider = self.env["llm.service"]._providers(company)[:1]
        if not provider:
            return
        managers = (
            self.env.ref("sales_team.group_sale_manager")
            .sudo()
            .users.filtered(lambda u: not u.share and company in u.company_ids)
        )
        labels = {
            budget_lib.TOKENS: _("tokens per day"),
            budget_lib.COST: _("monthly cost"),
        }
        for limit, level, _key in new:
            summary = _(
                "AI budget of %(company)s: %(level)s %% of the %(limit)s used",
                company=company.name,
                level=level,
                limit=labels[limit],
            )
            note = _(
                "Used %(used)s of %(cap)s. At 100 %% AI calls are refused: scoring falls back "
                "to rules and queued work waits for the next window. Raise the budget in "
                "CRM settings if needed.",
                used=round(budget.used[limit], 2),
                cap=budget.limits[limit],
            )
            for user in managers[:10]:
                provider.activity_schedule(
                    "mail.mail_activity_data_warning", summary=summary, note=note, user_id=user.id
                )
