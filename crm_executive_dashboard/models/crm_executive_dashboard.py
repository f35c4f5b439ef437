import logging
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta

import pytz
from dateutil.relativedelta import relativedelta

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.osv import expression
from odoo.tools import SQL

_logger = logging.getLogger(__name__)

MAX_PERIOD_YEARS = 5
FORECAST_MONTHS = 6
# "worst case" of the forecast: only the deals at or above this probability close
FORECAST_COMMIT_PROBABILITY = 70
AI_HIGH_SCORE = 70
AI_LOW_SCORE = 40
AI_ACCURACY_TOLERANCE = 20
TOP_AI_LEADS = 10
# branches of the AI query by creation date, run in parallel (see _query_ai_figures)
AI_QUERY_PARTS = 3
# memory of each hash table of the dashboard's queries (a few thousand groups of ~20 sums)
DASHBOARD_WORK_MEM = "64MB"
# the figures of the main query, per period
FIGURES = (
    "leads",
    "opps",
    "won",
    "lost",
    "closed",
    "revenue",
    "cycle",
    "open",
    "pipeline",
    "weighted",
    "stage_days",
)
# the AI figures (see _query_ai_figures)
AI_FIGURES = (
    "scored",
    "score",
    "high",
    "medium",
    "low",
    "accurate",
    "completed",
    "pending",
    "failed",
    "completeness",
    "completeness_n",
    "clarity",
    "clarity_n",
    "engagement",
    "engagement_n",
    "closed_high",
    "won_high",
    "closed_low",
    "won_low",
)
KPI_KEYS = (
    "total_leads",
    "total_opportunities",
    "won_opportunities",
    "lost_opportunities",
    "won_revenue",
    "conversion_rate",
    "win_rate",
    "avg_deal_size",
    "avg_sales_cycle_days",
    "pipeline_value",
    "weighted_pipeline",
)
# the lead states, as Odoo's own CRM filters define them ("Won", "Lost" in crm_lead_views.xml)
WON_DOMAIN = [("active", "=", True), ("stage_id.is_won", "=", True)]
LOST_DOMAIN = [("active", "=", False), ("probability", "=", 0)]
OPEN_DOMAIN = [
    ("active", "=", True),
    ("date_closed", "=", False),
    "|",
    ("stage_id", "=", False),
    ("stage_id.is_won", "=", False),
]
# archived leads that are not lost (probability kept) were removed from the pipeline: never counted
COUNTED_DOMAIN = ["|", ("active", "=", True), ("probability", "=", 0)]


class CrmExecutiveDashboard(models.AbstractModel):
    _name = "crm.executive.dashboard"
    _description = "CRM Executive Dashboard"

    # ------------------------------------------------------------
    # PUBLIC API
    # ------------------------------------------------------------

    @api.model
    def get_dashboard_data(self, date_from, date_to, team_ids=None, user_ids=None):
        """Every figure of the dashboard for a period, in the current company's currency.

        Record rules apply (the queries are built on ``crm.lead._search``), the number of
        queries does not depend on the number of leads. Each clickable figure comes with the
        domain of the records it was computed from (built here, never in the browser), so that
        the page opens exactly those records.
        """
        p = self._dashboard_params(date_from, date_to, team_ids, user_ids)
        # planner settings for the dashboard's aggregates (see ``_planner``): compiling them (JIT)
        # costs more than running them, and PostgreSQL cannot estimate their number of groups (a
        # few thousand) so it would sort a million rows instead of hashing them, in a hash table
        # sized by work_mem. PostgreSQL overestimates the groups (a million for a few thousand)
        # so it would run the branches of the main query one after the other rather than pay to
        # gather them, or split each scan between workers and gather every lead: free gathering
        # and no parallel scans make it run whole branches in its workers (Parallel Append),
        # each aggregating its own leads
        with self._planner(
            jit="off",
            enable_sort="off",
            work_mem=DASHBOARD_WORK_MEM,
            parallel_setup_cost=0,
            parallel_tuple_cost=0,
            min_parallel_index_scan_size="8GB",
            min_parallel_table_scan_size="8GB",
        ):
            main = self._query_period_figures(p)
            forecast = self._get_forecast(p)
        ai_figures = self._query_ai_figures(p)
        activities = self._query_activities(p)
        kpis = self._build_kpis(p, main["totals"])
        pipeline = self._build_pipeline(p, main["stages"])
        trends = self._build_trends(p, main["created_buckets"], main["won_buckets"])
        team_performance = self._build_performance(p, main["teams"], activities["teams"], "team_id")
        agent_metrics = self._build_performance(p, main["users"], activities["users"], "user_id")
        return {
            "period": {
                "date_from": fields.Date.to_string(p["date_from"]),
                "date_to": fields.Date.to_string(p["date_to"]),
                "previous_from": fields.Date.to_string(p["prev_from"]),
                "previous_to": fields.Date.to_string(p["prev_to"]),
                "days": p["days"],
                "comparison": p["comparison"],
                "granularity": p["granularity"],
                "timezone": p["tz"].zone,
            },
            "filters": {"team_ids": p["team_ids"], "user_ids": p["user_ids"]},
            # the companies the figures are computed for: the export asks for the same ones
            "company_ids": self.env.companies.ids,
            "currency": self._currency_info(p["currency"]),
            "base_domain": p["base_domain"],
            "empty": not (
                main["totals"]["leads_cur"]
                or main["totals"]["closed_cur"]
                or main["totals"]["open_cur"]
            ),
            "definitions": self._definitions(),
            "kpis": kpis,
            "pipeline": pipeline,
            "trends": trends,
            "team_performance": team_performance,
            "agent_metrics": agent_metrics,
            "forecast": forecast,
            "ai_insights": self._ai_insights(p, ai_figures),
        }

    @api.model
    def get_filter_options(self):
        """Teams and salespeople the current user can filter on (one query each)."""
        teams = self.env["crm.team"].search_read([], ["name"], order="sequence, name")
        leads = self.env["crm.lead"].with_context(active_test=False)
        users = leads._read_group([("user_id", "!=", False)], ["user_id"])
        users = sorted(
            ({"id": user.id, "name": user.display_name} for (user,) in users),
            key=lambda u: u["name"].lower(),
        )
        return {"teams": [{"id": t["id"], "name": t["name"]} for t in teams], "users": users}

    # ------------------------------------------------------------
    # PARAMETERS AND DOMAINS
    # ------------------------------------------------------------

    @api.model
    def _parse_date(self, value, name):
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        try:
            return fields.Date.to_date(value)
        except (TypeError, ValueError):
            raise UserError(
                _("%(name)s must be a date (YYYY-MM-DD), got %(value)r.", name=name, value=value)
            ) from None

    @api.model
    def _parse_ids(self, value, name):
        if not value:
            return []
        if not isinstance(value, (list, tuple)):
            value = [value]
        ids = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int) or item <= 0:
                raise UserError(
                    _(
                        "%(name)s must be a list of record ids (positive integers), got %(value)r.",
                        name=name,
                        value=item,
                    )
                )
            ids.append(item)
        return sorted(set(ids))

    @api.model
    def _dashboard_params(self, date_from, date_to, team_ids, user_ids):
        date_from = self._parse_date(date_from, "date_from")
        date_to = self._parse_date(date_to, "date_to")
        if not (date_from and date_to):
            raise UserError(_("Both date_from and date_to are required."))
        if date_from > date_to:
            raise UserError(
                _(
                    "The start date (%(start)s) is after the end date (%(end)s).",
                    start=date_from,
                    end=date_to,
                )
            )
        if date_to > date_from + relativedelta(years=MAX_PERIOD_YEARS):
            raise UserError(
                _(
                    "The period is longer than %(years)s years; choose a shorter one.",
                    years=MAX_PERIOD_YEARS,
                )
            )
        team_ids = self._parse_ids(team_ids, "team_ids")
        user_ids = self._parse_ids(user_ids, "user_ids")
        tz = pytz.timezone(self.env.context.get("tz") or self.env.user.tz or "UTC")
        days = (date_to - date_from).days + 1
        prev_from, prev_to, comparison = self._previous_period(date_from, date_to)
        if days <= 31:
            granularity = "day"
        elif days <= 183:
            granularity = "week"
        else:
            granularity = "month"
        base_domain = []
        if team_ids:
            base_domain = expression.AND([base_domain, [("team_id", "in", team_ids)]])
        if user_ids:
            base_domain = expression.AND([base_domain, [("user_id", "in", user_ids)]])
        today = fields.Datetime.now().replace(tzinfo=pytz.utc).astimezone(tz).date()
        won_stage_ids = self.env["crm.stage"].sudo().search([("is_won", "=", True)]).ids
        return {
            "date_from": date_from,
            "date_to": date_to,
            "prev_from": prev_from,
            "prev_to": prev_to,
            "days": days,
            "comparison": comparison,
            "granularity": granularity,
            "tz": tz,
            "team_ids": team_ids,
            "user_ids": user_ids,
            "base_domain": base_domain,
            "today": today,
            "won_stage_ids": won_stage_ids,
            "currency": self.env.company.currency_id,
            # UTC bounds of the local days: [from, to) of the period and of the previous one
            "from_utc": self._utc_bound(date_from, tz),
            "to_utc": self._utc_bound(date_to + timedelta(days=1), tz),
            "prev_from_utc": self._utc_bound(prev_from, tz),
        }

    @api.model
    def _previous_period(self, date_from, date_to):
        """``(start, end, comparison)`` of the period the figures are compared with.

        A calendar month, quarter or year (what the presets give) is compared with the one
        before it (December with November, Q1 with the last quarter); any other range with the
        same number of days just before it. ``comparison``: "month", "quarter", "year" or "days".
        """
        after = date_to + timedelta(days=1)
        if date_from.day == 1 and after.day == 1:
            months = (after.year - date_from.year) * 12 + after.month - date_from.month
            calendar = {1: "month", 3: "quarter", 12: "year"}.get(months)
            if (
                calendar == "month"
                or (calendar == "quarter" and date_from.month % 3 == 1)
                or (calendar == "year" and date_from.month == 1)
            ):
                return (
                    date_from - relativedelta(months=months),
                    date_from - timedelta(days=1),
                    calendar,
                )
        days = (date_to - date_from).days + 1
        prev_to = date_from - timedelta(days=1)
        return prev_to - timedelta(days=days - 1), prev_to, "days"

    @api.model
    def _utc_bound(self, day, tz):
        local = tz.localize(datetime.combine(day, time.min))
        return local.astimezone(pytz.utc).replace(tzinfo=None)

    @api.model
    def _range_domain(self, field, start, stop):
        return [
            (field, ">=", fields.Datetime.to_string(start)),
            (field, "<", fields.Datetime.to_string(stop)),
        ]

    @api.model
    def _kpi_domains(self, p, start, stop):
        """The domain of the leads behind each KPI, for a [start, stop) UTC range."""
        base = expression.AND([p["base_domain"], COUNTED_DOMAIN])
        created = expression.AND([base, self._range_domain("create_date", start, stop)])
        closed = expression.AND([p["base_domain"], self._range_domain("date_closed", start, stop)])
        opportunities = expression.AND([created, [("type", "=", "opportunity")]])
        won = expression.AND([closed, WON_DOMAIN])
        lost = expression.AND([closed, LOST_DOMAIN])
        pipeline = expression.AND([opportunities, OPEN_DOMAIN])
        return {
            "total_leads": created,
            "total_opportunities": opportunities,
            "won_opportunities": won,
            "lost_opportunities": lost,
            "won_revenue": won,
            "conversion_rate": created,
            "win_rate": expression.AND([closed, expression.OR([WON_DOMAIN, LOST_DOMAIN])]),
            "avg_deal_size": won,
            "avg_sales_cycle_days": won,
            "pipeline_value": pipeline,
            "weighted_pipeline": pipeline,
        }

    # ------------------------------------------------------------
    # SQL HELPERS
    # ------------------------------------------------------------

    @api.model
    def _lead_query(self, domain):
        """A query on the leads the user may read (record rules, allowed companies)."""
        leads = self.env["crm.lead"].with_context(active_test=False)
        leads.check_access_rights("read")
        leads.flush_model()
        self.env["crm.stage"].flush_model(["is_won"])
        return leads._search(domain)

    @api.model
    def _lead_from_where(self, domain):
        """The FROM and WHERE clauses of ``_lead_query(domain)``, for a query of their own."""
        query = self._lead_query(domain)
        return query.from_clause, query.where_clause or SQL("TRUE")

    @api.model
    def _state_sql(self, p):
        won_ids = p["won_stage_ids"] or [0]
        won = SQL("(crm_lead.active AND crm_lead.stage_id = ANY(%s))", won_ids)
        return {
            "won": won,
            "lost": SQL("(NOT crm_lead.active AND crm_lead.probability = 0)"),
            "open": SQL(
                "(crm_lead.active AND crm_lead.date_closed IS NULL AND "
                "(crm_lead.stage_id IS NULL OR NOT crm_lead.stage_id = ANY(%s)))",
                won_ids,
            ),
            "counted": SQL("(crm_lead.active OR crm_lead.probability = 0)"),
            "opp": SQL("crm_lead.type = 'opportunity'"),
        }

    @contextmanager
    def _planner(self, **settings):
        """Set PostgreSQL planner settings for the queries of the ``with`` block, then restore
        them: one query each way. ``set_config(..., true)`` is ``SET LOCAL``, which would last
        until the end of the transaction; on an error, the rollback of the transaction or of
        the savepoint restores them."""
        cr = self.env.cr
        cr.execute(
            SQL(
                "SELECT %s, %s",
                SQL(", ").join(SQL("current_setting(%s)", name) for name in settings),
                SQL(", ").join(
                    SQL("set_config(%s, %s, true)", name, str(value))
                    for name, value in settings.items()
                ),
            )
        )
        saved = cr.fetchone()[: len(settings)]
        yield
        cr.execute(
            SQL(
                "SELECT %s",
                SQL(", ").join(
                    SQL("set_config(%s, %s, true)", name, value)
                    for name, value in zip(settings, saved, strict=True)
                ),
            )
        )

    @api.model
    def _in_range_sql(self, column, start, stop):
        return SQL("(%s >= %s AND %s < %s)", column, start, column, stop)

    @api.model
    def _outside_range_sql(self, column, start, stop):
        """The rows whose ``column`` is empty or outside [start, stop)."""
        return SQL("(%s IS NULL OR %s < %s OR %s >= %s)", column, column, start, column, stop)

    @api.model
    def _rate(self, part, whole):
        return round(100.0 * part / whole, 1) if whole else 0.0

    @api.model
    def _currency_info(self, currency):
        return {
            "id": currency.id,
            "name": currency.name,
            "symbol": currency.symbol,
            "position": currency.position,
            "decimal_places": currency.decimal_places,
        }
