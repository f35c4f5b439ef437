import bisect
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
# the AI figures, in the order of the AI aggregates of the main query (then the won-rate ones)
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
        queries does not depend on the number of leads. Each figure comes with the domain
        of the leads it was computed from, so that the page opens exactly those leads.
        """
        p = self._dashboard_params(date_from, date_to, team_ids, user_ids)
        # planner settings for the dashboard's aggregates (see ``_planner``): compiling them (JIT)
        # costs more than running them, and PostgreSQL cannot estimate their number of groups (a
        # few thousand) so it would sort a million rows instead of hashing them, in a hash table
        # sized by work_mem
        with self._planner(jit="off", enable_sort="off", work_mem=DASHBOARD_WORK_MEM):
            main = self._query_period_figures(p)
            forecast = self._get_forecast(p)
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
                "granularity": p["granularity"],
                "timezone": p["tz"].zone,
            },
            "filters": {"team_ids": p["team_ids"], "user_ids": p["user_ids"]},
            "currency": self._currency_info(p["currency"]),
            "base_domain": p["base_domain"],
            "empty": not (
                main["totals"]["leads_cur"]
                or main["totals"]["closed_cur"]
                or main["totals"]["open_cur"]
            ),
            "kpis": kpis,
            "pipeline": pipeline,
            "trends": trends,
            "team_performance": team_performance,
            "agent_metrics": agent_metrics,
            "forecast": forecast,
            "ai_insights": self._ai_insights(p, main["ai"]),
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
        prev_to = date_from - timedelta(days=1)
        prev_from = prev_to - timedelta(days=days - 1)
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
    def _conversion(self, currency):
        """``(steps, factor)``: how to convert company amounts to ``currency``.

        A lead's amounts are in its company's currency; like Odoo's reports and
        ``res.currency._get_conversion_rate``, they are converted with the rates of the current
        (root) company at the lead's date: the closing date, else the creation date. Leads
        without company are not converted.

        The rates are read once (one small query). ``factor(company_id, day)`` is the factor of
        a company's amounts on a day; it only changes on the ``steps`` (the dates where a rate
        changes), so the queries aggregate amounts by company and by "slice" of time between
        steps, and the factor is applied to the sums afterwards: exact, and no per-lead rate
        work in SQL.
        """
        companies = (
            self.env["res.company"]
            .sudo()
            .search_fetch([("currency_id", "!=", currency.id)], ["currency_id"])
        )
        if not companies:
            return [], lambda company_id, day: 1.0
        root = self.env.company.root_id.id
        currency_ids = set(companies.currency_id.ids) | {currency.id}
        self.env["res.currency.rate"].flush_model(["rate", "currency_id", "company_id", "name"])
        self.env.cr.execute(
            """SELECT currency_id, company_id IS NOT NULL, name, rate FROM res_currency_rate
                WHERE currency_id IN %s AND (company_id IS NULL OR company_id = %s)
             ORDER BY name""",
            (tuple(currency_ids), root),
        )
        rates = {}  # {currency: {own: [(date, rate)]}}
        steps = set()
        for currency_id, own, day, rate in self.env.cr.fetchall():
            rates.setdefault(currency_id, {True: [], False: []})[own].append((day, rate))
            steps.add(day)

        def rate_at(currency_id, day):
            # res.currency._get_rates: the company's own latest rate, else the shared one, else 1
            for own in (True, False):
                series = rates.get(currency_id, {}).get(own, [])
                index = bisect.bisect_right(series, (day, float("inf")))
                if index:
                    return series[index - 1][1]
            return 1.0

        source = {company.id: company.currency_id.id for company in companies}
        cache = {}

        def factor(company_id, day):
            if company_id not in source:
                return 1.0
            key = (company_id, day)
            if key not in cache:
                cache[key] = rate_at(currency.id, day) / rate_at(source[company_id], day)
            return cache[key]

        return sorted(steps), factor

    @api.model
    def _period_conversion(self, p):
        """``_conversion`` of the dashboard's currency, read once per call of the dashboard."""
        if "conversion" not in p:
            p["conversion"] = self._conversion(p["currency"])
        return p["conversion"]

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

    # ------------------------------------------------------------
    # QUERIES
    # ------------------------------------------------------------

    @api.model
    def _slices(self, p, steps, buckets=True):
        """The UTC instants where something changes in the period and the previous one: the
        period bounds, the trend buckets (``buckets``) and the currency rate steps (``steps``),
        sorted. A lead's "slice" (``width_bucket`` of a date over them) tells its period, its
        trend bucket and its conversion rate; slice ``i`` is ``[bounds[i - 1], bounds[i])``.

        Returns the bounds and, per slice, (period: "cur", "prev" or None, trend bucket of the
        current period, UTC day).
        """
        bounds = {p["prev_from_utc"], p["from_utc"], p["to_utc"]}
        starts = [
            (self._utc_bound(start, p["tz"]), start) for start, _stop in self._bucket_starts(p)
        ]
        if buckets:
            bounds.update(bound for bound, _start in starts if p["from_utc"] < bound < p["to_utc"])
        for day in steps:
            bound = datetime.combine(day, time.min)
            if p["prev_from_utc"] < bound < p["to_utc"]:
                bounds.add(bound)
        bounds = sorted(bounds)
        slices = [(None, None, None)]
        for start in bounds[:-1]:
            if start < p["from_utc"]:
                period, bucket = ("prev" if start >= p["prev_from_utc"] else None), None
            else:
                period = "cur"
                bucket = max((b for b in starts if b[0] <= start), default=starts[0])[1]
            slices.append((period, bucket, start.date()))
        slices.append((None, None, None))
        return bounds, slices

    @api.model
    def _query_period_figures(self, p):
        """The figures of the leads created or closed in the period or the previous one: KPIs
        of both periods, per team, salesperson, stage (open opportunities), creation bucket,
        won bucket, and the AI figures of the period, from one query.

        The query only groups the leads by a few narrow keys (company, team, salesperson,
        state, type, creation and closing slice, see ``_slices``), with sums that need no
        condition; Python rolls the groups up into every section and converts the amounts per
        company and slice. The rows are split by creation date into a few branches of a
        UNION ALL that PostgreSQL runs in parallel (Parallel Append), each one a hash aggregate
        fed by an index-only scan of ``crm_lead_dashboard_idx``.
        """
        steps, factor = self._period_conversion(p)
        # the finest slices only where they are needed, so that there are few groups: the
        # creation date of open leads (trend bucket, rate of the pipeline amounts) and the
        # closing date of active (won) leads (trend bucket, rate of the won amounts); the
        # creation date of closed leads only needs the trend bucket, the closing date of
        # archived (lost) leads only the period
        bounds, slices = self._slices(p, steps)
        coarse_bounds, coarse_slices = self._slices(p, [])
        period_bounds, period_slices = self._slices(p, [], buckets=False)
        # st: the stage of active leads (0: none), -1 lost (archived at probability 0),
        # -2 archived without being lost (never counted)
        keys = SQL(
            """crm_lead.company_id, crm_lead.team_id, crm_lead.user_id,
               CASE WHEN crm_lead.active THEN COALESCE(crm_lead.stage_id, 0)
                    WHEN crm_lead.probability = 0 THEN -1 ELSE -2 END,
               crm_lead.type = 'opportunity',
               width_bucket(crm_lead.create_date, CASE WHEN crm_lead.date_closed IS NULL
                                                       THEN %(bounds)s::timestamp[]
                                                       ELSE %(coarse)s::timestamp[] END),
               width_bucket(crm_lead.date_closed, CASE WHEN crm_lead.active
                                                       THEN %(bounds)s::timestamp[]
                                                       ELSE %(period)s::timestamp[] END)""",
            bounds=bounds,
            coarse=coarse_bounds,
            period=period_bounds,
        )
        scored = SQL("crm_lead.ai_last_enrichment_date IS NOT NULL")
        score = SQL("crm_lead.ai_probability_score")
        aggregates = SQL(
            """COUNT(*), SUM(crm_lead.expected_revenue::float8),
               SUM(crm_lead.expected_revenue::float8 * crm_lead.probability),
               SUM(date_part('epoch', crm_lead.date_closed - crm_lead.create_date)),
               SUM(date_part('epoch', crm_lead.date_last_stage_update)),
               COUNT(crm_lead.date_last_stage_update)"""
        )
        ai_aggregates = SQL(
            """COUNT(crm_lead.ai_last_enrichment_date),
               SUM(%(score)s) FILTER (WHERE %(scored)s),
               COUNT(*) FILTER (WHERE %(scored)s AND %(score)s >= %(high)s),
               COUNT(*) FILTER (WHERE %(scored)s AND %(score)s >= %(low)s AND %(score)s < %(high)s),
               COUNT(*) FILTER (WHERE %(scored)s AND %(score)s < %(low)s),
               COUNT(*) FILTER (WHERE %(scored)s
                                AND ABS(%(score)s - COALESCE(crm_lead.probability, 0)) <= %(tol)s),
               COUNT(*) FILTER (WHERE crm_lead.ai_enrichment_status = 'completed'),
               COUNT(*) FILTER (WHERE crm_lead.ai_enrichment_status IN ('pending', 'processing')),
               COUNT(*) FILTER (WHERE crm_lead.ai_enrichment_status = 'failed'),
               SUM(crm_lead.ai_completeness_score) FILTER (WHERE %(scored)s),
               COUNT(crm_lead.ai_completeness_score) FILTER (WHERE %(scored)s),
               SUM(crm_lead.ai_clarity_score) FILTER (WHERE %(scored)s),
               COUNT(crm_lead.ai_clarity_score) FILTER (WHERE %(scored)s),
               SUM(crm_lead.ai_engagement_score) FILTER (WHERE %(scored)s),
               COUNT(crm_lead.ai_engagement_score) FILTER (WHERE %(scored)s)""",
            score=score,
            scored=scored,
            high=AI_HIGH_SCORE,
            low=AI_LOW_SCORE,
            tol=AI_ACCURACY_TOLERANCE,
        )
        # branches: each period split in halves by creation date, and the leads created outside
        # of both periods (or without creation date) but closed in them. The AI figures are for
        # the leads created in the period, and the won-rate by score band for the leads closed
        # in it: the branches of the previous period only need the band counts.
        window = (p["prev_from_utc"], p["to_utc"])
        cuts = [
            p["prev_from_utc"],
            p["prev_from_utc"] + (p["from_utc"] - p["prev_from_utc"]) / 2,
            p["from_utc"],
            p["from_utc"] + (p["to_utc"] - p["from_utc"]) / 2,
            p["to_utc"],
        ]
        parts = [
            (self._range_domain("create_date", cuts[index], cuts[index + 1]), index >= 2)
            for index in range(4)
        ]
        parts.append(
            (
                expression.AND(
                    [
                        [
                            "|",
                            "|",
                            ("create_date", "=", False),
                            ("create_date", "<", fields.Datetime.to_string(window[0])),
                            ("create_date", ">=", fields.Datetime.to_string(window[1])),
                        ],
                        self._range_domain("date_closed", *window),
                    ]
                ),
                False,
            )
        )
        band_only = SQL(", ").join(
            SQL("COUNT(*) FILTER (WHERE %s AND %s >= %s)", scored, score, AI_HIGH_SCORE)
            if name == "high"
            else SQL("COUNT(*) FILTER (WHERE %s AND %s < %s)", scored, score, AI_LOW_SCORE)
            if name == "low"
            # the types of the other branches: sums of scores are numeric, counts bigint
            else SQL("NULL::numeric")
            if name in ("score", "completeness", "clarity", "engagement")
            else SQL("NULL::bigint")
            for name in AI_FIGURES[:15]
        )
        branches = []
        for domain, current in parts:
            query = self._lead_query(expression.AND([p["base_domain"], domain]))
            branches.append(
                SQL(
                    "(SELECT %s, %s, %s FROM %s WHERE %s GROUP BY %s)",
                    keys,
                    aggregates,
                    ai_aggregates if current else band_only,
                    query.from_clause,
                    query.where_clause or SQL("TRUE"),
                    keys,
                )
            )
        self.env.cr.execute(SQL(" UNION ALL ").join(branches))
        return self._roll_up(
            p, self.env.cr.fetchall(), (slices, coarse_slices, period_slices), factor
        )

    @api.model
    def _roll_up(self, p, rows, slices, factor):  # noqa: C901 (one pass over the groups)
        """The sections from the groups of ``_query_period_figures`` (``slices``: the fine,
        coarse and period slices of its keys).

        Each target (totals, a team, a salesperson, a stage) accumulates in a flat list, figure
        ``name`` of period ``index`` (0: current, 1: previous) at ``2 * FIGURES.index(name) +
        index``: a few thousand groups are rolled up in a few milliseconds.
        """
        won_stages = set(p["won_stage_ids"])
        now = fields.Datetime.now().replace(tzinfo=pytz.utc).timestamp()
        periods = {"cur": 0, "prev": 1}
        # per slice: (period index or None, trend bucket, UTC day), of the fine, coarse and
        # period slices (see _query_period_figures)
        fine, coarse, period_only = (
            [(periods.get(period), bucket, day) for period, bucket, day in info] for info in slices
        )
        rates = {}

        def rate(company, index):
            key = (company, index)
            if key not in rates:
                rates[key] = factor(company, fine[index][2])
            return rates[key]

        LEADS, OPPS, WON, LOST, CLOSED, REVENUE, CYCLE, OPEN, PIPELINE, WEIGHTED, DAYS = range(
            0, 22, 2
        )
        size = 2 * len(FIGURES)
        totals, teams, users, stages = [0] * size, {}, {}, {}
        created_buckets, won_buckets = {}, {}
        counts = [0] * size  # totals: leads behind the cycle and stage-days sums
        stage_counts = {}
        ai = [0] * 19
        for (
            company,
            team,
            user,
            st,
            opp,
            cs,
            ds,
            count,
            revenue,
            weighted,
            cycle_sum,
            update_sum,
            update_count,
            *ai_row,
        ) in rows:
            created_in, bucket, _day = (
                (fine if ds is None else coarse)[cs] if cs is not None else (None, None, None)
            )
            closed_in, won_bucket, _day = (
                (fine if st >= 0 else period_only)[ds] if ds is not None else (None, None, None)
            )
            team_values = teams.get(team)
            if team_values is None:
                team_values = teams[team] = [0] * size
            user_values = users.get(user)
            if user_values is None:
                user_values = users[user] = [0] * size
            targets = (totals, team_values, user_values)
            won = st in won_stages
            if created_in is not None and st != -2:  # created in a period, counted
                for values in targets:
                    values[LEADS + created_in] += count
                    if opp:
                        values[OPPS + created_in] += count
                if not created_in:
                    created_buckets[bucket] = created_buckets.get(bucket, 0) + count
                    for index, value in enumerate(ai_row):
                        if value:
                            ai[index] += value
                if opp and ds is None and st >= 0 and not won:  # open opportunity
                    amount = (revenue or 0.0) * rate(company, cs)
                    amount_weighted = (weighted or 0.0) * rate(company, cs) / 100.0
                    days = update_count * now - (update_sum or 0.0)
                    stage_targets = [(totals, counts)]
                    if not created_in and st:
                        if st not in stages:
                            stages[st], stage_counts[st] = [0] * size, [0] * size
                        stage_targets.append((stages[st], stage_counts[st]))
                    for values, numbers in stage_targets:
                        values[OPEN + created_in] += count
                        values[PIPELINE + created_in] += amount
                        values[WEIGHTED + created_in] += amount_weighted
                        values[DAYS + created_in] += days
                        numbers[DAYS + created_in] += update_count
            if closed_in is not None and (won or st == -1):  # won or lost in a period
                for values in targets:
                    values[CLOSED + closed_in] += count
                    values[(WON if won else LOST) + closed_in] += count
                if won:
                    amount = (revenue or 0.0) * rate(company, ds)
                    for values in targets:
                        values[REVENUE + closed_in] += amount
                    if cs is not None:
                        totals[CYCLE + closed_in] += cycle_sum or 0.0
                        counts[CYCLE + closed_in] += count
                    if not closed_in:
                        values = won_buckets.setdefault(won_bucket, [0, 0.0])
                        values[0] += count
                        values[1] += amount
                if not closed_in:
                    high, low = ai_row[2], ai_row[4]
                    ai[15] += high
                    ai[17] += low
                    if won:
                        ai[16] += high
                        ai[18] += low
        for name in (CYCLE, DAYS):
            for index in (0, 1):
                number = counts[name + index]
                totals[name + index] = totals[name + index] / number / 86400.0 if number else 0
        for stage, values in stages.items():
            number = stage_counts[stage][DAYS]
            values[DAYS] = values[DAYS] / number / 86400.0 if number else 0

        def as_dict(values):
            return {
                f"{name}_{suffix}": values[2 * position + index]
                for position, name in enumerate(FIGURES)
                for suffix, index in periods.items()
            }

        return {
            "totals": as_dict(totals),
            "teams": {team: as_dict(values) for team, values in teams.items()},
            "users": {user: as_dict(values) for user, values in users.items()},
            "stages": {stage: as_dict(values) for stage, values in stages.items()},
            "created_buckets": {
                bucket: {"leads_cur": count} for bucket, count in created_buckets.items()
            },
            "won_buckets": {
                bucket: {"won_cur": won, "revenue_cur": amount}
                for bucket, (won, amount) in won_buckets.items()
            },
            "ai": dict(zip(AI_FIGURES, ai, strict=True)),
        }

    @api.model
    def _query_activities(self, p):
        """Activities done in the period and overdue today, per team and salesperson of their
        lead.

        The activities are matched with their leads by merge joins of narrow indexes read in
        lead id order (``crm_lead_counted_dashboard_idx``,
        ``mail_message_lead_activity_res_dashboard_idx``, ``mail_activity_lead_dashboard_idx``),
        the work split between the parallel workers: hashing the million counted leads, or
        sorting the activities, costs several times more. The (team, salesperson) groups are
        rolled up here.
        """
        domain = expression.AND([p["base_domain"], COUNTED_DOMAIN])
        query = self._lead_query(domain)
        self.env["mail.message"].flush_model(["model", "res_id", "mail_activity_type_id", "date"])
        self.env["mail.activity"].flush_model(["res_model", "res_id", "date_deadline"])
        leads = query.subselect("crm_lead.id", "crm_lead.team_id", "crm_lead.user_id")
        sql = SQL(
            """SELECT act.team_id, act.user_id,
                      COUNT(*) FILTER (WHERE act.done), COUNT(*) FILTER (WHERE NOT act.done)
                 FROM (SELECT lead.team_id, lead.user_id, TRUE AS done
                         FROM mail_message m
                         JOIN %(leads)s lead ON lead.id = m.res_id
                        WHERE m.model = 'crm.lead' AND m.mail_activity_type_id IS NOT NULL
                          AND m.date >= %(start)s AND m.date < %(stop)s
                    UNION ALL
                       SELECT lead.team_id, lead.user_id, FALSE
                         FROM mail_activity a
                         JOIN %(leads)s lead ON lead.id = a.res_id
                        WHERE a.res_model = 'crm.lead' AND a.date_deadline < %(today)s
                      ) act
             GROUP BY act.team_id, act.user_id""",
            start=p["from_utc"],
            stop=p["to_utc"],
            today=p["today"],
            leads=leads,
        )
        with self._planner(
            jit="off",
            enable_hashjoin="off",
            enable_nestloop="off",
            parallel_setup_cost=0,
            parallel_tuple_cost=0.01,
        ):
            self.env.cr.execute(sql)
            rows = self.env.cr.fetchall()
        result = {"teams": {}, "users": {}}
        for team_id, user_id, done, overdue in rows:
            for key, group in ((team_id, result["teams"]), (user_id, result["users"])):
                counts = group.setdefault(key, {"done": 0, "overdue": 0})
                counts["done"] += done
                counts["overdue"] += overdue
        return result

    # ------------------------------------------------------------
    # SECTIONS
    # ------------------------------------------------------------

    @api.model
    def _rate(self, part, whole):
        return round(100.0 * part / whole, 1) if whole else 0.0

    @api.model
    def _kpi_values(self, t, suffix, currency):
        leads, opps = t[f"leads_{suffix}"], t[f"opps_{suffix}"]
        won, lost = t[f"won_{suffix}"], t[f"lost_{suffix}"]
        revenue = currency.round(t[f"revenue_{suffix}"])
        return {
            "total_leads": leads,
            "total_opportunities": opps,
            "won_opportunities": won,
            "lost_opportunities": lost,
            "won_revenue": revenue,
            "conversion_rate": self._rate(opps, leads),
            "win_rate": self._rate(won, won + lost),
            "avg_deal_size": currency.round(revenue / won) if won else 0.0,
            "avg_sales_cycle_days": round(t[f"cycle_{suffix}"], 1),
            "pipeline_value": currency.round(t[f"pipeline_{suffix}"]),
            "weighted_pipeline": currency.round(t[f"weighted_{suffix}"]),
        }

    @api.model
    def _build_kpis(self, p, totals):
        current = self._kpi_values(totals, "cur", p["currency"])
        previous = self._kpi_values(totals, "prev", p["currency"])
        domains = self._kpi_domains(p, p["from_utc"], p["to_utc"])
        kpis = {}
        for key in KPI_KEYS:
            value, prev = current[key], previous[key]
            kpis[key] = {
                "value": value,
                "previous": prev,
                "delta": round(value - prev, 2),
                # relative change in %, None when there is nothing to compare with
                "change": round(100.0 * (value - prev) / abs(prev), 1) if prev else None,
                "domain": domains[key],
            }
        return kpis

    @api.model
    def _build_pipeline(self, p, stages):
        stage_domain = [("is_won", "=", False)]
        if p["team_ids"]:
            stage_domain = expression.AND(
                [stage_domain, ["|", ("team_id", "=", False), ("team_id", "in", p["team_ids"])]]
            )
        stage_records = self.env["crm.stage"].search(stage_domain)
        stage_records |= self.env["crm.stage"].browse(list(stages))
        stage_records = stage_records.sorted(lambda s: (s.sequence, s.id))
        pipeline_domain = self._kpi_domains(p, p["from_utc"], p["to_utc"])["pipeline_value"]
        currency = p["currency"]
        result = []
        for stage in stage_records:
            values = stages.get(stage.id, {})
            result.append(
                {
                    "stage_id": stage.id,
                    "name": stage.name,
                    "count": values.get("open_cur", 0),
                    "expected_revenue": currency.round(values.get("pipeline_cur", 0)),
                    "weighted_revenue": currency.round(values.get("weighted_cur", 0)),
                    "avg_days_in_stage": round(values.get("stage_days_cur", 0), 1),
                    "domain": expression.AND([pipeline_domain, [("stage_id", "=", stage.id)]]),
                }
            )
        return result

    @api.model
    def _bucket_starts(self, p):
        start = p["date_from"]
        if p["granularity"] == "week":
            start -= timedelta(days=start.weekday())
        elif p["granularity"] == "month":
            start = start.replace(day=1)
        step = {
            "day": relativedelta(days=1),
            "week": relativedelta(weeks=1),
            "month": relativedelta(months=1),
        }[p["granularity"]]
        while start <= p["date_to"]:
            yield start, start + step
            start += step

    @api.model
    def _build_trends(self, p, created, won):
        tz = p["tz"]
        buckets = []
        for start, stop in self._bucket_starts(p):
            if start > p["today"]:
                break  # the future of a period that is not over: no bucket falling to zero
            # clicked bucket: its part inside the period
            start_in, stop_in = (
                max(start, p["date_from"]),
                min(stop, p["date_to"] + timedelta(days=1)),
            )
            created_values = created.get(start, {})
            won_values = won.get(start, {})
            if p["granularity"] == "month":
                label = start.strftime("%b %Y")
            else:
                label = start.strftime("%d %b")
            buckets.append(
                {
                    "date": fields.Date.to_string(start),
                    "label": label,
                    "leads": created_values.get("leads_cur", 0),
                    "won": won_values.get("won_cur", 0),
                    "revenue": p["currency"].round(won_values.get("revenue_cur", 0)),
                    "domain_from": fields.Datetime.to_string(self._utc_bound(start_in, tz)),
                    "domain_to": fields.Datetime.to_string(self._utc_bound(stop_in, tz)),
                }
            )
        return {"granularity": p["granularity"], "buckets": buckets}

    @api.model
    def _build_performance(self, p, groups, activities, field):
        comodel = "crm.team" if field == "team_id" else "res.users"
        ids = [key for key in set(groups) | set(activities) if key]
        names = {rec.id: rec.display_name for rec in self.env[comodel].sudo().browse(ids)}
        empty_label = _("No team") if field == "team_id" else _("Unassigned")
        base = expression.AND([p["base_domain"], COUNTED_DOMAIN])
        period = expression.OR(
            [
                self._range_domain("create_date", p["from_utc"], p["to_utc"]),
                self._range_domain("date_closed", p["from_utc"], p["to_utc"]),
            ]
        )
        rows = []
        for key in set(groups) | set(activities):
            values = groups.get(key, {})
            acts = activities.get(key, {})
            leads, opps = values.get("leads_cur", 0), values.get("opps_cur", 0)
            won, lost = values.get("won_cur", 0), values.get("lost_cur", 0)
            row = {
                "id": key or False,
                "name": names.get(key, empty_label) if key else empty_label,
                "leads": leads,
                "opportunities": opps,
                "won": won,
                "lost": lost,
                "revenue": p["currency"].round(values.get("revenue_cur", 0)),
                "conversion_rate": self._rate(opps, leads),
                "win_rate": self._rate(won, won + lost),
                "activities_done": acts.get("done", 0),
                "activities_overdue": acts.get("overdue", 0),
                "domain": expression.AND([base, [(field, "=", key or False)], period]),
            }
            # overdue activities are today's: alone, they do not bring a row into the period
            if any(row[k] for k in ("leads", "won", "lost", "activities_done")):
                rows.append(row)
        rows.sort(key=lambda r: (-r["revenue"], -r["won"], -r["leads"], r["name"].lower()))
        return rows

    @api.model
    def _get_forecast(self, p):
        """Open opportunities by expected closing month, this month and the next ones."""
        first = p["today"].replace(day=1)
        stop = first + relativedelta(months=FORECAST_MONTHS)
        domain = expression.AND(
            [
                p["base_domain"],
                OPEN_DOMAIN,
                [
                    ("type", "=", "opportunity"),
                    ("date_deadline", ">=", fields.Date.to_string(first)),
                    ("date_deadline", "<", fields.Date.to_string(stop)),
                ],
            ]
        )
        query = self._lead_query(domain)
        steps, factor = self._period_conversion(p)
        steps = [datetime.combine(day, time.min) for day in steps] or [datetime.min]
        # amounts by month, company and rate step of the creation date (open leads are
        # converted at their creation date), converted afterwards
        self.env.cr.execute(
            SQL(
                """SELECT date_trunc('month', crm_lead.date_deadline)::date, crm_lead.company_id,
                      width_bucket(crm_lead.create_date, %(steps)s::timestamp[]), COUNT(*),
                      SUM(crm_lead.expected_revenue::float8 * crm_lead.probability),
                      SUM(crm_lead.expected_revenue::float8),
                      SUM(crm_lead.expected_revenue::float8)
                          FILTER (WHERE crm_lead.probability >= %(commit)s)
                 FROM %(from)s WHERE %(where)s GROUP BY 1, 2, 3""",
                steps=steps,
                commit=FORECAST_COMMIT_PROBABILITY,
                **{"from": query.from_clause, "where": query.where_clause or SQL("TRUE")},
            )
        )
        by_month = {}
        for month, company_id, step, count, weighted, best, worst in self.env.cr.fetchall():
            if step is None:  # no creation date: not converted
                rate = 1.0
            else:  # step 0: before the first rate
                day = steps[step - 1].date() if step else steps[0].date() - timedelta(days=1)
                rate = factor(company_id, day)
            values = by_month.setdefault(month, [0, 0.0, 0.0, 0.0])
            values[0] += count
            values[1] += (weighted or 0.0) * rate / 100.0
            values[2] += (best or 0.0) * rate
            values[3] += (worst or 0.0) * rate
        currency = p["currency"]
        result = []
        for index in range(FORECAST_MONTHS):
            month = first + relativedelta(months=index)
            count, weighted, best, worst = by_month.get(month, (0, 0, 0, 0))
            result.append(
                {
                    "month": fields.Date.to_string(month),
                    "label": month.strftime("%b %Y"),
                    "count": count,
                    "weighted": currency.round(weighted or 0),
                    "best_case": currency.round(best or 0),
                    "worst_case": currency.round(worst or 0),
                    "domain": expression.AND(
                        [
                            domain,
                            [
                                ("date_deadline", ">=", fields.Date.to_string(month)),
                                (
                                    "date_deadline",
                                    "<",
                                    fields.Date.to_string(month + relativedelta(months=1)),
                                ),
                            ],
                        ]
                    ),
                }
            )
        return result

    @api.model
    def _get_ai_insights(self, date_from, date_to, team_ids=None, user_ids=None):
        """AI scoring figures on the leads created in the period (and closed in it for the
        won-rate by score band)."""
        p = self._dashboard_params(date_from, date_to, team_ids, user_ids)
        st = self._state_sql(p)
        created = self._in_range_sql(SQL("crm_lead.create_date"), p["from_utc"], p["to_utc"])
        closed = SQL(
            "(%s AND (%s OR %s))",
            self._in_range_sql(SQL("crm_lead.date_closed"), p["from_utc"], p["to_utc"]),
            st["won"],
            st["lost"],
        )
        scored = SQL("(%s AND crm_lead.ai_last_enrichment_date IS NOT NULL)", created)
        score = SQL("crm_lead.ai_probability_score")
        rows_domain = expression.AND(
            [
                p["base_domain"],
                COUNTED_DOMAIN,
                expression.OR(
                    [
                        self._range_domain("create_date", p["from_utc"], p["to_utc"]),
                        self._range_domain("date_closed", p["from_utc"], p["to_utc"]),
                    ]
                ),
            ]
        )
        query = self._lead_query(rows_domain)
        self.env.cr.execute(
            SQL(
                """SELECT COUNT(*) FILTER (WHERE %(scored)s),
                      SUM(%(score)s) FILTER (WHERE %(scored)s),
                      COUNT(*) FILTER (WHERE %(scored)s AND %(score)s >= %(high)s),
                      COUNT(*) FILTER (WHERE %(scored)s AND %(score)s >= %(low)s
                                         AND %(score)s < %(high)s),
                      COUNT(*) FILTER (WHERE %(scored)s AND %(score)s < %(low)s),
                      COUNT(*) FILTER (WHERE %(scored)s
                                       AND ABS(%(score)s - COALESCE(crm_lead.probability, 0))
                                           <= %(tol)s),
                      COUNT(*) FILTER (WHERE %(created)s AND %(status)s = 'completed'),
                      COUNT(*) FILTER (WHERE %(created)s
                                       AND %(status)s IN ('pending', 'processing')),
                      COUNT(*) FILTER (WHERE %(created)s AND %(status)s = 'failed'),
                      SUM(crm_lead.ai_completeness_score) FILTER (WHERE %(scored)s),
                      COUNT(crm_lead.ai_completeness_score) FILTER (WHERE %(scored)s),
                      SUM(crm_lead.ai_clarity_score) FILTER (WHERE %(scored)s),
                      COUNT(crm_lead.ai_clarity_score) FILTER (WHERE %(scored)s),
                      SUM(crm_lead.ai_engagement_score) FILTER (WHERE %(scored)s),
                      COUNT(crm_lead.ai_engagement_score) FILTER (WHERE %(scored)s),
                      COUNT(*) FILTER (WHERE %(closed_scored)s AND %(score)s >= %(high)s),
                      COUNT(*) FILTER (WHERE %(closed_scored)s AND %(score)s >= %(high)s
                                       AND %(won)s),
                      COUNT(*) FILTER (WHERE %(closed_scored)s AND %(score)s < %(low)s),
                      COUNT(*) FILTER (WHERE %(closed_scored)s AND %(score)s < %(low)s AND %(won)s)
                 FROM %(from)s WHERE %(where)s""",
                scored=scored,
                score=score,
                high=AI_HIGH_SCORE,
                low=AI_LOW_SCORE,
                tol=AI_ACCURACY_TOLERANCE,
                created=created,
                closed=closed,
                closed_scored=SQL("(%s AND crm_lead.ai_last_enrichment_date IS NOT NULL)", closed),
                status=SQL("crm_lead.ai_enrichment_status"),
                won=st["won"],
                **{"from": query.from_clause, "where": query.where_clause or SQL("TRUE")},
            )
        )
        values = self.env.cr.fetchone()
        figures = {name: value or 0 for name, value in zip(AI_FIGURES, values, strict=True)}
        return self._ai_insights(p, figures)

    @api.model
    def _scoring_model_line(self):
        """The company's win-probability model (llm_lead_scoring), in one query."""
        model = (
            self.env["llm.scoring.model"]
            .sudo()
            .search_read(
                [("company_id", "=", self.env.company.id), ("team_id", "=", False)],
                [
                    "version",
                    "trained_at",
                    "leads_used",
                    "auc",
                    "brier",
                    "pls_brier",
                    "calibration_error",
                ],
                limit=1,
            )
        )
        if not model:
            return {"method": "rules"}
        model = model[0]
        return {
            "method": "learned",
            "version": model["version"],
            "trained_at": fields.Datetime.to_string(model["trained_at"]),
            "leads_used": model["leads_used"],
            "auc": round(model["auc"], 3),
            "brier": round(model["brier"], 3),
            "pls_brier": round(model["pls_brier"], 3),
            "calibration_error": round(model["calibration_error"], 3),
        }

    @api.model
    def _ai_insights(self, p, figures):
        """The AI section from its figures (see ``_get_ai_insights``), plus the top leads."""
        total = figures["scored"]
        high, medium, low = figures["high"], figures["medium"], figures["low"]
        closed_high, won_high = figures["closed_high"], figures["won_high"]
        closed_low, won_low = figures["closed_low"], figures["won_low"]

        def average(name, number):
            return round(figures[name] / number, 1) if number else 0.0

        created_domain = expression.AND(
            [
                p["base_domain"],
                COUNTED_DOMAIN,
                self._range_domain("create_date", p["from_utc"], p["to_utc"]),
            ]
        )
        scored_domain = expression.AND([created_domain, [("ai_last_enrichment_date", "!=", False)]])
        # leads with a score only: the index on the score finds the top ones without a scan
        top = (
            self.env["crm.lead"]
            .with_context(active_test=False)
            .search_read(
                expression.AND([scored_domain, [("ai_probability_score", "!=", False)]]),
                [
                    "name",
                    "partner_id",
                    "partner_name",
                    "ai_probability_score",
                    "expected_revenue",
                    "stage_id",
                    "user_id",
                    "company_id",
                ],
                order="ai_probability_score desc, id desc",
                limit=TOP_AI_LEADS,
            )
        )
        return {
            "scoring_model": self._scoring_model_line(),
            "total_ai_scored": total,
            "avg_ai_score": average("score", high + medium + low),
            "high_quality_leads": high,
            "ai_score_distribution": {"high": high, "medium": medium, "low": low},
            "ai_vs_manual_accuracy": self._rate(figures["accurate"], total),
            "enrichment_stats": {
                "completed": figures["completed"],
                "pending": figures["pending"],
                "failed": figures["failed"],
            },
            "ai_completeness_avg": average("completeness", figures["completeness_n"]),
            "ai_clarity_avg": average("clarity", figures["clarity_n"]),
            "ai_engagement_avg": average("engagement", figures["engagement_n"]),
            "won_by_ai_band": {
                "high": {
                    "closed": closed_high,
                    "won": won_high,
                    "win_rate": self._rate(won_high, closed_high),
                },
                "low": {
                    "closed": closed_low,
                    "won": won_low,
                    "win_rate": self._rate(won_low, closed_low),
                },
            },
            "top_ai_scored_leads": [
                {
                    "id": lead["id"],
                    "name": lead["name"],
                    "partner": lead["partner_id"][1]
                    if lead["partner_id"]
                    else (lead["partner_name"] or ""),
                    "score": round(lead["ai_probability_score"], 1),
                    # expected revenue in the lead's company currency, like the lead form shows it
                    "expected_revenue": lead["expected_revenue"],
                    "stage": lead["stage_id"][1] if lead["stage_id"] else "",
                    "salesperson": lead["user_id"][1] if lead["user_id"] else "",
                }
                for lead in top
            ],
            "domains": {
                "scored": scored_domain,
                "high": expression.AND(
                    [scored_domain, [("ai_probability_score", ">=", AI_HIGH_SCORE)]]
                ),
                "medium": expression.AND(
                    [
                        scored_domain,
                        [
                            ("ai_probability_score", ">=", AI_LOW_SCORE),
                            ("ai_probability_score", "<", AI_HIGH_SCORE),
                        ],
                    ]
                ),
                "low": expression.AND(
                    [scored_domain, [("ai_probability_score", "<", AI_LOW_SCORE)]]
                ),
            },
        }

    @api.model
    def _currency_info(self, currency):
        return {
            "id": currency.id,
            "name": currency.name,
            "symbol": currency.symbol,
            "position": currency.position,
            "decimal_places": currency.decimal_places,
        }
