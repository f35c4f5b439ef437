import bisect
import logging
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
KPI_KEYS = (
    "total_leads", "total_opportunities", "won_opportunities", "lost_opportunities",
    "won_revenue", "conversion_rate", "win_rate", "avg_deal_size", "avg_sales_cycle_days",
    "pipeline_value", "weighted_pipeline",
)
# the lead states, as Odoo's own CRM filters define them ("Won", "Lost" in crm_lead_views.xml)
WON_DOMAIN = [("active", "=", True), ("stage_id.is_won", "=", True)]
LOST_DOMAIN = [("active", "=", False), ("probability", "=", 0)]
OPEN_DOMAIN = [("active", "=", True), ("date_closed", "=", False),
               "|", ("stage_id", "=", False), ("stage_id.is_won", "=", False)]
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
        main = self._query_period_figures(p)
        kpis = self._build_kpis(p, main["totals"])
        pipeline = self._build_pipeline(p, main["stages"])
        trends = self._build_trends(p, main["created_buckets"], main["won_buckets"])
        activities = self._query_activities(p)
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
            "empty": not (main["totals"]["leads_cur"] or main["totals"]["closed_cur"]
                          or main["totals"]["open_cur"]),
            "kpis": kpis,
            "pipeline": pipeline,
            "trends": trends,
            "team_performance": team_performance,
            "agent_metrics": agent_metrics,
            "forecast": self._get_forecast(p),
            "ai_insights": self._get_ai_insights(date_from, date_to, team_ids, user_ids=user_ids),
        }

    @api.model
    def get_filter_options(self):
        """Teams and salespeople the current user can filter on (one query each)."""
        teams = self.env["crm.team"].search_read([], ["name"], order="sequence, name")
        leads = self.env["crm.lead"].with_context(active_test=False)
        users = leads._read_group([("user_id", "!=", False)], ["user_id"])
        users = sorted(({"id": user.id, "name": user.display_name} for (user,) in users),
                       key=lambda u: u["name"].lower())
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
            raise UserError(_("%(name)s must be a date (YYYY-MM-DD), got %(value)r.",
                              name=name, value=value)) from None

    @api.model
    def _parse_ids(self, value, name):
        if not value:
            return []
        if not isinstance(value, (list, tuple)):
            value = [value]
        ids = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int) or item <= 0:
                raise UserError(_("%(name)s must be a list of record ids (positive integers), "
                                  "got %(value)r.", name=name, value=item))
            ids.append(item)
        return sorted(set(ids))

    @api.model
    def _dashboard_params(self, date_from, date_to, team_ids, user_ids):
        date_from = self._parse_date(date_from, "date_from")
        date_to = self._parse_date(date_to, "date_to")
        if not (date_from and date_to):
            raise UserError(_("Both date_from and date_to are required."))
        if date_from > date_to:
            raise UserError(_("The start date (%(start)s) is after the end date (%(end)s).",
                              start=date_from, end=date_to))
        if date_to > date_from + relativedelta(years=MAX_PERIOD_YEARS):
            raise UserError(_("The period is longer than %(years)s years; choose a shorter one.",
                              years=MAX_PERIOD_YEARS))
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
            "date_from": date_from, "date_to": date_to, "prev_from": prev_from,
            "prev_to": prev_to, "days": days, "granularity": granularity, "tz": tz,
            "team_ids": team_ids, "user_ids": user_ids, "base_domain": base_domain,
            "today": today, "won_stage_ids": won_stage_ids,
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
        return [(field, ">=", fields.Datetime.to_string(start)),
                (field, "<", fields.Datetime.to_string(stop))]

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
    def _revenue_sql(self, currency):
        """Expected revenue of ``crm_lead`` in ``currency``.

        A lead's amounts are in its company's currency; like Odoo's reports and
        ``res.currency._get_conversion_rate``, they are converted with the rates of the current
        (root) company at the lead's date: the closing date, else the creation date.

        The rates are read once (one small query) and turned into a step function per currency
        (the dates where a rate changes, the factor from each date on); PostgreSQL finds a lead's
        step by binary search (``width_bucket``), so the conversion stays in SQL and costs
        O(log rates) per lead instead of a rate lookup per lead.
        """
        amount = SQL("COALESCE(crm_lead.expected_revenue, 0)::float8")
        companies = self.env["res.company"].sudo().search_fetch(
            [("currency_id", "!=", currency.id)], ["currency_id"])
        if not companies:
            return amount
        root = self.env.company.root_id.id
        currency_ids = set(companies.currency_id.ids) | {currency.id}
        self.env["res.currency.rate"].flush_model(["rate", "currency_id", "company_id", "name"])
        self.env.cr.execute(
            """SELECT currency_id, company_id IS NOT NULL, name, rate FROM res_currency_rate
                WHERE currency_id IN %s AND (company_id IS NULL OR company_id = %s)
             ORDER BY name""", (tuple(currency_ids), root))
        rates = {}  # {currency: {own: [(date, rate)]}}
        for currency_id, own, day, rate in self.env.cr.fetchall():
            rates.setdefault(currency_id, {True: [], False: []})[own].append((day, rate))

        def rate_at(currency_id, day):
            # res.currency._get_rates: the company's own latest rate, else the shared one, else 1
            for own in (True, False):
                series = rates.get(currency_id, {}).get(own, [])
                index = bisect.bisect_right(series, (day, float("inf")))
                if index:
                    return series[index - 1][1]
            return 1.0

        on_date = SQL("COALESCE(crm_lead.date_closed, crm_lead.create_date)::date")
        cases = []
        for company in companies:
            from_id = company.currency_id.id
            steps = sorted({day for cid in (from_id, currency.id)
                            for series in rates.get(cid, {}).values() for day, _rate in series})
            factors = [1.0] + [rate_at(currency.id, day) / rate_at(from_id, day) for day in steps]
            if not steps:
                continue
            cases.append(SQL("WHEN %s THEN (%s::float8[])[width_bucket(%s, %s::date[]) + 1]",
                             company.id, factors, on_date, steps))
        if not cases:
            return amount
        return SQL("%s * COALESCE(CASE crm_lead.company_id %s END, 1.0)", amount, SQL(" ").join(cases))

    @api.model
    def _rows_sql(self, query, revenue):
        """The leads of ``query`` as a derived table aliased ``crm_lead``, with their converted
        revenue computed once per row (OFFSET 0 keeps PostgreSQL from inlining the expression
        into every aggregate that uses it)."""
        return SQL(
            """(SELECT crm_lead.id, crm_lead.team_id, crm_lead.user_id, crm_lead.stage_id,
                       crm_lead.create_date, crm_lead.date_closed, crm_lead.date_deadline,
                       crm_lead.date_last_stage_update, crm_lead.active, crm_lead.probability,
                       crm_lead.type, %s AS revenue
                  FROM %s WHERE %s OFFSET 0) AS crm_lead""",
            revenue, query.from_clause, query.where_clause or SQL("TRUE"))

    @api.model
    def _state_sql(self, p):
        won_ids = p["won_stage_ids"] or [0]
        won = SQL("(crm_lead.active AND crm_lead.stage_id = ANY(%s))", won_ids)
        return {
            "won": won,
            "lost": SQL("(NOT crm_lead.active AND crm_lead.probability = 0)"),
            "open": SQL("(crm_lead.active AND crm_lead.date_closed IS NULL AND "
                        "(crm_lead.stage_id IS NULL OR NOT crm_lead.stage_id = ANY(%s)))", won_ids),
            "counted": SQL("(crm_lead.active OR crm_lead.probability = 0)"),
            "opp": SQL("crm_lead.type = 'opportunity'"),
        }

    @api.model
    def _in_range_sql(self, column, start, stop):
        return SQL("(%s >= %s AND %s < %s)", column, start, column, stop)

    @api.model
    def _bucket_sql(self, column, p):
        return SQL("date_trunc(%s, (%s AT TIME ZONE 'UTC') AT TIME ZONE %s)::date",
                   p["granularity"], column, p["tz"].zone)

    # ------------------------------------------------------------
    # QUERIES
    # ------------------------------------------------------------

    @api.model
    def _query_period_figures(self, p):
        """One scan of the leads created or closed in the period or the previous one.

        Grouping sets give the totals (KPIs of both periods), then per team, salesperson,
        stage (open opportunities), creation bucket and won bucket.
        """
        created_col = SQL("crm_lead.create_date")
        closed_col = SQL("crm_lead.date_closed")
        rows_domain = expression.AND([p["base_domain"], expression.OR([
            self._range_domain("create_date", p["prev_from_utc"], p["to_utc"]),
            self._range_domain("date_closed", p["prev_from_utc"], p["to_utc"]),
        ])])
        query = self._lead_query(rows_domain)
        st = self._state_sql(p)
        revenue = SQL("crm_lead.revenue")
        rows = self._rows_sql(query, self._revenue_sql(p["currency"]))
        created_cur = SQL("(%s AND %s)", self._in_range_sql(created_col, p["from_utc"], p["to_utc"]),
                          st["counted"])
        created_prev = SQL("(%s AND %s)", self._in_range_sql(created_col, p["prev_from_utc"],
                                                             p["from_utc"]), st["counted"])
        closed_cur = self._in_range_sql(closed_col, p["from_utc"], p["to_utc"])
        closed_prev = self._in_range_sql(closed_col, p["prev_from_utc"], p["from_utc"])
        cycle = SQL("EXTRACT(EPOCH FROM (crm_lead.date_closed - crm_lead.create_date)) / 86400.0")
        stage_days = SQL("EXTRACT(EPOCH FROM (%s - crm_lead.date_last_stage_update)) / 86400.0",
                         fields.Datetime.now())
        aggregates = {}
        for suffix, created, closed in (("cur", created_cur, closed_cur),
                                        ("prev", created_prev, closed_prev)):
            won = SQL("(%s AND %s)", closed, st["won"])
            pipe = SQL("(%s AND %s AND %s)", created, st["opp"], st["open"])
            aggregates.update({
                f"leads_{suffix}": SQL("COUNT(*) FILTER (WHERE %s)", created),
                f"opps_{suffix}": SQL("COUNT(*) FILTER (WHERE %s AND %s)", created, st["opp"]),
                f"won_{suffix}": SQL("COUNT(*) FILTER (WHERE %s)", won),
                f"lost_{suffix}": SQL("COUNT(*) FILTER (WHERE %s AND %s)", closed, st["lost"]),
                f"closed_{suffix}": SQL("COUNT(*) FILTER (WHERE %s AND (%s OR %s))",
                                        closed, st["won"], st["lost"]),
                f"revenue_{suffix}": SQL("SUM(%s) FILTER (WHERE %s)", revenue, won),
                f"cycle_{suffix}": SQL("AVG(%s) FILTER (WHERE %s)", cycle, won),
                f"open_{suffix}": SQL("COUNT(*) FILTER (WHERE %s)", pipe),
                f"pipeline_{suffix}": SQL("SUM(%s) FILTER (WHERE %s)", revenue, pipe),
                f"weighted_{suffix}": SQL("SUM(%s * COALESCE(crm_lead.probability, 0) / 100.0) "
                                          "FILTER (WHERE %s)", revenue, pipe),
                f"stage_days_{suffix}": SQL("AVG(%s) FILTER (WHERE %s)", stage_days, pipe),
            })
        created_bucket = SQL("CASE WHEN %s THEN %s END", created_cur, self._bucket_sql(created_col, p))
        won_bucket = SQL("CASE WHEN %s AND %s THEN %s END", closed_cur, st["won"],
                         self._bucket_sql(closed_col, p))
        stage_key = SQL("CASE WHEN %s AND %s AND %s THEN crm_lead.stage_id END",
                        created_cur, st["opp"], st["open"])
        group_keys = [SQL("crm_lead.team_id"), SQL("crm_lead.user_id"), stage_key,
                      created_bucket, won_bucket]
        sql = SQL(
            """SELECT GROUPING(%(k0)s, %(k1)s, %(k2)s, %(k3)s, %(k4)s) AS grp,
                      %(k0)s, %(k1)s, %(k2)s, %(k3)s, %(k4)s, %(aggs)s
                 FROM %(rows)s
             GROUP BY GROUPING SETS ((), (%(k0)s), (%(k1)s), (%(k2)s), (%(k3)s), (%(k4)s))""",
            k0=group_keys[0], k1=group_keys[1], k2=group_keys[2], k3=group_keys[3],
            k4=group_keys[4], aggs=SQL(", ").join(aggregates.values()), rows=rows,
        )
        self.env.cr.execute(sql)
        names = list(aggregates)
        result = {"totals": dict.fromkeys(names, 0), "teams": {}, "users": {}, "stages": {},
                  "created_buckets": {}, "won_buckets": {}}
        # GROUPING() bits, first key = highest bit: 0b01111 = grouped by team only, etc.
        sets = {0b01111: "teams", 0b10111: "users", 0b11011: "stages",
                0b11101: "created_buckets", 0b11110: "won_buckets"}
        for row in self.env.cr.fetchall():
            grp, keys, values = row[0], row[1:6], dict(zip(names, row[6:]))
            values = {k: v or 0 for k, v in values.items()}
            if grp == 0b11111:
                result["totals"] = values
                continue
            target = sets[grp]
            position = [0b01111, 0b10111, 0b11011, 0b11101, 0b11110].index(grp)
            key = keys[position]
            if key is None and target in ("stages", "created_buckets", "won_buckets"):
                continue
            result[target][key] = values
        return result

    @api.model
    def _query_activities(self, p):
        """Activities done in the period and overdue today, per team and salesperson."""
        domain = expression.AND([p["base_domain"], COUNTED_DOMAIN])
        query = self._lead_query(domain)
        self.env["mail.message"].flush_model(["model", "res_id", "mail_activity_type_id", "date"])
        self.env["mail.activity"].flush_model(["res_model", "res_id", "date_deadline"])
        sql = SQL(
            """SELECT GROUPING(lead.team_id, lead.user_id), lead.team_id, lead.user_id,
                      COUNT(*) FILTER (WHERE act.done), COUNT(*) FILTER (WHERE NOT act.done)
                 FROM (SELECT m.res_id AS lead_id, TRUE AS done
                         FROM mail_message m
                        WHERE m.model = 'crm.lead' AND m.mail_activity_type_id IS NOT NULL
                          AND m.date >= %(start)s AND m.date < %(stop)s
                    UNION ALL
                       SELECT a.res_id, FALSE
                         FROM mail_activity a
                        WHERE a.res_model = 'crm.lead' AND a.date_deadline < %(today)s
                      ) act
                 JOIN %(leads)s lead ON lead.id = act.lead_id
             GROUP BY GROUPING SETS ((lead.team_id), (lead.user_id))""",
            start=p["from_utc"], stop=p["to_utc"], today=p["today"],
            leads=query.subselect("crm_lead.id", "crm_lead.team_id", "crm_lead.user_id"),
        )
        self.env.cr.execute(sql)
        result = {"teams": {}, "users": {}}
        for grp, team_id, user_id, done, overdue in self.env.cr.fetchall():
            if grp == 0b01:
                result["teams"][team_id] = {"done": done, "overdue": overdue}
            else:
                result["users"][user_id] = {"done": done, "overdue": overdue}
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
            stage_domain = expression.AND([stage_domain, ["|", ("team_id", "=", False),
                                                          ("team_id", "in", p["team_ids"])]])
        stage_records = self.env["crm.stage"].search(stage_domain)
        stage_records |= self.env["crm.stage"].browse(list(stages))
        stage_records = stage_records.sorted(lambda s: (s.sequence, s.id))
        pipeline_domain = self._kpi_domains(p, p["from_utc"], p["to_utc"])["pipeline_value"]
        currency = p["currency"]
        result = []
        for stage in stage_records:
            values = stages.get(stage.id, {})
            result.append({
                "stage_id": stage.id,
                "name": stage.name,
                "count": values.get("open_cur", 0),
                "expected_revenue": currency.round(values.get("pipeline_cur", 0)),
                "weighted_revenue": currency.round(values.get("weighted_cur", 0)),
                "avg_days_in_stage": round(values.get("stage_days_cur", 0), 1),
                "domain": expression.AND([pipeline_domain, [("stage_id", "=", stage.id)]]),
            })
        return result

    @api.model
    def _bucket_starts(self, p):
        start = p["date_from"]
        if p["granularity"] == "week":
            start -= timedelta(days=start.weekday())
        elif p["granularity"] == "month":
            start = start.replace(day=1)
        step = {"day": relativedelta(days=1), "week": relativedelta(weeks=1),
                "month": relativedelta(months=1)}[p["granularity"]]
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
            start_in, stop_in = max(start, p["date_from"]), min(stop, p["date_to"] + timedelta(days=1))
            created_values = created.get(start, {})
            won_values = won.get(start, {})
            if p["granularity"] == "month":
                label = start.strftime("%b %Y")
            else:
                label = start.strftime("%d %b")
            buckets.append({
                "date": fields.Date.to_string(start),
                "label": label,
                "leads": created_values.get("leads_cur", 0),
                "won": won_values.get("won_cur", 0),
                "revenue": p["currency"].round(won_values.get("revenue_cur", 0)),
                "domain_from": fields.Datetime.to_string(self._utc_bound(start_in, tz)),
                "domain_to": fields.Datetime.to_string(self._utc_bound(stop_in, tz)),
            })
        return {"granularity": p["granularity"], "buckets": buckets}

    @api.model
    def _build_performance(self, p, groups, activities, field):
        comodel = "crm.team" if field == "team_id" else "res.users"
        ids = [key for key in set(groups) | set(activities) if key]
        names = {rec.id: rec.display_name for rec in self.env[comodel].sudo().browse(ids)}
        empty_label = _("No team") if field == "team_id" else _("Unassigned")
        base = expression.AND([p["base_domain"], COUNTED_DOMAIN])
        period = expression.OR([
            self._range_domain("create_date", p["from_utc"], p["to_utc"]),
            self._range_domain("date_closed", p["from_utc"], p["to_utc"]),
        ])
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
        domain = expression.AND([p["base_domain"], OPEN_DOMAIN, [
            ("type", "=", "opportunity"),
            ("date_deadline", ">=", fields.Date.to_string(first)),
            ("date_deadline", "<", fields.Date.to_string(stop)),
        ]])
        query = self._lead_query(domain)
        rows = self._rows_sql(query, self._revenue_sql(p["currency"]))
        self.env.cr.execute(SQL(
            """SELECT date_trunc('month', crm_lead.date_deadline)::date AS month, COUNT(*),
                      SUM(crm_lead.revenue * COALESCE(crm_lead.probability, 0) / 100.0),
                      SUM(crm_lead.revenue),
                      SUM(crm_lead.revenue) FILTER (WHERE crm_lead.probability >= %(commit)s)
                 FROM %(rows)s GROUP BY 1""",
            rows=rows, commit=FORECAST_COMMIT_PROBABILITY,
        ))
        by_month = {row[0]: row[1:] for row in self.env.cr.fetchall()}
        currency = p["currency"]
        result = []
        for index in range(FORECAST_MONTHS):
            month = first + relativedelta(months=index)
            count, weighted, best, worst = by_month.get(month, (0, 0, 0, 0))
            result.append({
                "month": fields.Date.to_string(month),
                "label": month.strftime("%b %Y"),
                "count": count,
                "weighted": currency.round(weighted or 0),
                "best_case": currency.round(best or 0),
                "worst_case": currency.round(worst or 0),
                "domain": expression.AND([domain, [
                    ("date_deadline", ">=", fields.Date.to_string(month)),
                    ("date_deadline", "<", fields.Date.to_string(month + relativedelta(months=1))),
                ]]),
            })
        return result

    @api.model
    def _get_ai_insights(self, date_from, date_to, team_ids=None, user_ids=None):
        """AI scoring figures on the leads created in the period (and closed in it for the
        won-rate by score band)."""
        p = self._dashboard_params(date_from, date_to, team_ids, user_ids)
        st = self._state_sql(p)
        created = self._in_range_sql(SQL("crm_lead.create_date"), p["from_utc"], p["to_utc"])
        closed = SQL("(%s AND (%s OR %s))",
                     self._in_range_sql(SQL("crm_lead.date_closed"), p["from_utc"], p["to_utc"]),
                     st["won"], st["lost"])
        scored = SQL("(%s AND crm_lead.ai_last_enrichment_date IS NOT NULL)", created)
        score = SQL("crm_lead.ai_probability_score")
        rows_domain = expression.AND([p["base_domain"], COUNTED_DOMAIN, expression.OR([
            self._range_domain("create_date", p["from_utc"], p["to_utc"]),
            self._range_domain("date_closed", p["from_utc"], p["to_utc"]),
        ])])
        query = self._lead_query(rows_domain)
        self.env.cr.execute(SQL(
            """SELECT COUNT(*) FILTER (WHERE %(scored)s),
                      AVG(%(score)s) FILTER (WHERE %(scored)s),
                      COUNT(*) FILTER (WHERE %(scored)s AND %(score)s >= %(high)s),
                      COUNT(*) FILTER (WHERE %(scored)s AND %(score)s >= %(low)s AND %(score)s < %(high)s),
                      COUNT(*) FILTER (WHERE %(scored)s AND %(score)s < %(low)s),
                      COUNT(*) FILTER (WHERE %(scored)s
                                       AND ABS(%(score)s - COALESCE(crm_lead.probability, 0)) <= %(tol)s),
                      COUNT(*) FILTER (WHERE %(created)s AND crm_lead.ai_enrichment_status = 'completed'),
                      COUNT(*) FILTER (WHERE %(created)s AND crm_lead.ai_enrichment_status IN ('pending', 'processing')),
                      COUNT(*) FILTER (WHERE %(created)s AND crm_lead.ai_enrichment_status = 'failed'),
                      AVG(crm_lead.ai_completeness_score) FILTER (WHERE %(scored)s),
                      AVG(crm_lead.ai_clarity_score) FILTER (WHERE %(scored)s),
                      AVG(crm_lead.ai_engagement_score) FILTER (WHERE %(scored)s),
                      COUNT(*) FILTER (WHERE %(closed)s AND crm_lead.ai_last_enrichment_date IS NOT NULL AND %(score)s >= %(high)s),
                      COUNT(*) FILTER (WHERE %(closed)s AND crm_lead.ai_last_enrichment_date IS NOT NULL AND %(score)s >= %(high)s AND %(won)s),
                      COUNT(*) FILTER (WHERE %(closed)s AND crm_lead.ai_last_enrichment_date IS NOT NULL AND %(score)s < %(low)s),
                      COUNT(*) FILTER (WHERE %(closed)s AND crm_lead.ai_last_enrichment_date IS NOT NULL AND %(score)s < %(low)s AND %(won)s)
                 FROM %(from)s WHERE %(where)s""",
            scored=scored, score=score, high=AI_HIGH_SCORE, low=AI_LOW_SCORE,
            tol=AI_ACCURACY_TOLERANCE, created=created, closed=closed, won=st["won"],
            **{"from": query.from_clause, "where": query.where_clause or SQL("TRUE")},
        ))
        (total, avg_score, high, medium, low, accurate, completed, pending, failed, completeness,
         clarity, engagement, closed_high, won_high, closed_low, won_low) = self.env.cr.fetchone()
        created_domain = expression.AND([p["base_domain"], COUNTED_DOMAIN, self._range_domain(
            "create_date", p["from_utc"], p["to_utc"])])
        scored_domain = expression.AND([created_domain, [("ai_last_enrichment_date", "!=", False)]])
        top = self.env["crm.lead"].with_context(active_test=False).search_read(
            scored_domain,
            ["name", "partner_id", "partner_name", "ai_probability_score", "expected_revenue",
             "stage_id", "user_id", "company_id"],
            order="ai_probability_score desc, id desc", limit=TOP_AI_LEADS)
        return {
            "total_ai_scored": total,
            "avg_ai_score": round(avg_score or 0, 1),
            "high_quality_leads": high,
            "ai_score_distribution": {"high": high, "medium": medium, "low": low},
            "ai_vs_manual_accuracy": self._rate(accurate, total),
            "enrichment_stats": {"completed": completed, "pending": pending, "failed": failed},
            "ai_completeness_avg": round(completeness or 0, 1),
            "ai_clarity_avg": round(clarity or 0, 1),
            "ai_engagement_avg": round(engagement or 0, 1),
            "won_by_ai_band": {
                "high": {"closed": closed_high, "won": won_high,
                         "win_rate": self._rate(won_high, closed_high)},
                "low": {"closed": closed_low, "won": won_low,
                        "win_rate": self._rate(won_low, closed_low)},
            },
            "top_ai_scored_leads": [{
                "id": lead["id"],
                "name": lead["name"],
                "partner": lead["partner_id"][1] if lead["partner_id"] else (lead["partner_name"] or ""),
                "score": round(lead["ai_probability_score"], 1),
                # expected revenue in the lead's company currency, like the lead form shows it
                "expected_revenue": lead["expected_revenue"],
                "stage": lead["stage_id"][1] if lead["stage_id"] else "",
                "salesperson": lead["user_id"][1] if lead["user_id"] else "",
            } for lead in top],
            "domains": {
                "scored": scored_domain,
                "high": expression.AND([scored_domain, [("ai_probability_score", ">=", AI_HIGH_SCORE)]]),
                "medium": expression.AND([scored_domain, [("ai_probability_score", ">=", AI_LOW_SCORE),
                                                          ("ai_probability_score", "<", AI_HIGH_SCORE)]]),
                "low": expression.AND([scored_domain, [("ai_probability_score", "<", AI_LOW_SCORE)]]),
            },
        }

    @api.model
    def _currency_info(self, currency):
        return {"id": currency.id, "name": currency.name, "symbol": currency.symbol,
                "position": currency.position, "decimal_places": currency.decimal_places}
