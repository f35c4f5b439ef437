import bisect
from datetime import datetime, time

import pytz

from odoo import api, fields, models
from odoo.tools import SQL

from .crm_executive_dashboard import FIGURES


class CrmExecutiveDashboardFigures(models.AbstractModel):
    _inherit = "crm.executive.dashboard"

    # ------------------------------------------------------------
    # CURRENCY CONVERSION
    # ------------------------------------------------------------

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

    # ------------------------------------------------------------
    # MAIN QUERY
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
        # each sum only over the leads whose groups use it (the condition is the same for all
        # the leads of a group): the amounts of active leads (won, open), the cycle of active
        # (won) leads, the weighted amount and the time in stage of open opportunities. The
        # amount is summed as numeric: PostgreSQL converts a numeric to float8 through its
        # text, which cost a third of the query when every lead was converted twice
        open_opportunity = SQL(
            "crm_lead.date_closed IS NULL AND crm_lead.active AND crm_lead.type = 'opportunity'"
        )
        aggregates = SQL(
            """COUNT(*), SUM(crm_lead.expected_revenue) FILTER (WHERE crm_lead.active),
               SUM(crm_lead.expected_revenue::float8 * crm_lead.probability)
                   FILTER (WHERE %(open)s),
               SUM(date_part('epoch', crm_lead.date_closed - crm_lead.create_date))
                   FILTER (WHERE crm_lead.active),
               SUM(date_part('epoch', crm_lead.date_last_stage_update)) FILTER (WHERE %(open)s),
               COUNT(crm_lead.date_last_stage_update) FILTER (WHERE %(open)s)""",
            open=open_opportunity,
        )
        # branches: each period split in halves by creation date, and the leads created outside
        # of both periods (or without creation date) but closed in them (the AI figures come
        # from their own query, see _query_ai_figures); the leads the user may read are
        # searched once, the branches add their range
        window = (p["prev_from_utc"], p["to_utc"])
        cuts = [
            p["prev_from_utc"],
            p["prev_from_utc"] + (p["from_utc"] - p["prev_from_utc"]) / 2,
            p["from_utc"],
            p["from_utc"] + (p["to_utc"] - p["from_utc"]) / 2,
            p["to_utc"],
        ]
        created = SQL("crm_lead.create_date")
        parts = [self._in_range_sql(created, cuts[index], cuts[index + 1]) for index in range(4)]
        parts.append(
            SQL(
                "%s AND %s",
                self._outside_range_sql(created, *window),
                self._in_range_sql(SQL("crm_lead.date_closed"), *window),
            )
        )
        leads_from, leads_where = self._lead_from_where(p["base_domain"])
        branches = [
            SQL(
                "(SELECT %s, %s FROM %s WHERE %s AND %s GROUP BY %s)",
                keys,
                aggregates,
                leads_from,
                leads_where,
                part,
                keys,
            )
            for part in parts
        ]
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
        }
