import bisect
from datetime import datetime, time, timedelta

import pytz

from odoo import api, fields, models
from odoo.osv import expression
from odoo.tools import SQL

from .crm_executive_dashboard import COUNTED_DOMAIN, FIGURES


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

    @api.model
    def _rate_step(self, p, column):
        """``(key, rate)``: ``key`` the SQL of a lead's currency rate step by ``column`` (a
        date), to group by; ``rate(company_id, step)`` the factor converting that company's
        sums of that step (step 0: before the first rate; no date: not converted)."""
        steps, factor = self._period_conversion(p)
        bounds = [datetime.combine(day, time.min) for day in steps] or [datetime.min]

        def rate(company_id, step):
            if step is None:
                return 1.0
            day = bounds[step - 1].date() if step else bounds[0].date() - timedelta(days=1)
            return factor(company_id, day)

        return SQL("width_bucket(%s, %s)", column, self._timestamp_array(bounds)), rate

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
    def _timestamp_array(self, instants):
        """``instants`` (naive UTC datetimes) as one ``timestamp[]`` literal, the one way the
        dashboard passes bounds to ``width_bucket``: PostgreSQL parses one constant, not an
        ``ARRAY[...]`` of casts (the main query repeats its bounds in every branch)."""
        return SQL(
            "%s::timestamp[]", "{%s}" % ",".join(instant.isoformat() for instant in instants)
        )

    @api.model
    def _query_period_figures(self, p):
        """The figures of the leads created or closed in the period or the previous one: KPIs
        of both periods, per team, salesperson, stage (open opportunities), creation bucket and
        won bucket, from one query.

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
        # st: the stage of active leads (0: none), -1 lost (archived at probability 0; the
        # leads archived without being lost are never counted, so not read)
        slice_keys = SQL(
            """crm_lead.type = 'opportunity',
               width_bucket(crm_lead.create_date, CASE WHEN crm_lead.date_closed IS NULL
                                                       THEN %(bounds)s ELSE %(coarse)s END),
               width_bucket(crm_lead.date_closed, CASE WHEN crm_lead.active
                                                       THEN %(bounds)s ELSE %(period)s END)""",
            bounds=self._timestamp_array(bounds),
            coarse=self._timestamp_array(coarse_bounds),
            period=self._timestamp_array(period_bounds),
        )
        keys = SQL(
            """crm_lead.company_id, crm_lead.team_id, crm_lead.user_id,
               CASE WHEN crm_lead.active THEN COALESCE(crm_lead.stage_id, 0) ELSE -1 END, %s""",
            slice_keys,
        )
        # the leads created in the previous period only count in its totals, unless closed in
        # the current one: no team and salesperson (-1) for the others, and no stage but the
        # won ones (a third fewer groups)
        closed_later = SQL("crm_lead.date_closed >= %s", p["from_utc"])
        previous_keys = SQL(
            """crm_lead.company_id,
               CASE WHEN %(later)s THEN crm_lead.team_id ELSE -1 END,
               CASE WHEN %(later)s THEN crm_lead.user_id ELSE -1 END,
               CASE WHEN NOT crm_lead.active THEN -1
                    WHEN crm_lead.stage_id = ANY(%(won)s) THEN crm_lead.stage_id ELSE 0 END,
               %(slices)s""",
            later=closed_later,
            won=p["won_stage_ids"] or [0],
            slices=slice_keys,
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
        leads_from, leads_where = self._lead_from_where(
            expression.AND([p["base_domain"], COUNTED_DOMAIN])
        )
        branches = [
            SQL(
                "(SELECT %s, %s FROM %s WHERE %s AND %s GROUP BY 1, 2, 3, 4, 5, 6, 7)",
                previous_keys if index < 2 else keys,
                aggregates,
                leads_from,
                leads_where,
                part,
            )
            for index, part in enumerate(parts)
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
        index``: ten thousand groups are rolled up in about ten milliseconds (the additions
        written out, the lists of each team and salesperson pair looked up once).
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
            value = rates.get(key)
            if value is None:
                value = rates[key] = factor(company, fine[index][2])
            return value

        LEADS, OPPS, WON, LOST, CLOSED, REVENUE, CYCLE, OPEN, PIPELINE, WEIGHTED, DAYS = range(
            0, 22, 2
        )
        size = 2 * len(FIGURES)
        totals, teams, users, stages = [0] * size, {}, {}, {}
        created_buckets, won_buckets = {}, {}
        counts = [0] * size  # totals: leads behind the cycle and stage-days sums
        stage_counts = {}
        pairs = {}  # (team, salesperson): their lists
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
            pair = pairs.get((team, user))
            if pair is None:
                if team not in teams:
                    teams[team] = [0] * size
                if user not in users:
                    users[user] = [0] * size
                pair = pairs[team, user] = (teams[team], users[user])
            team_values, user_values = pair
            # created in a period: the fine slice of open leads, the coarse one of closed ones
            created_in, bucket, _day = (
                (fine if ds is None else coarse)[cs] if cs is not None else (None, None, None)
            )
            if created_in is not None:
                index = LEADS + created_in
                totals[index] += count
                team_values[index] += count
                user_values[index] += count
                if opp:
                    index = OPPS + created_in
                    totals[index] += count
                    team_values[index] += count
                    user_values[index] += count
                if not created_in:
                    created_buckets[bucket] = created_buckets.get(bucket, 0) + count
            if ds is None:
                if created_in is None or not opp or st < 0 or st in won_stages:
                    continue
                # open opportunity
                factor_ = rate(company, cs)
                amount = (revenue or 0.0) * factor_
                amount_weighted = (weighted or 0.0) * factor_ / 100.0
                days = update_count * now - (update_sum or 0.0)
                totals[OPEN + created_in] += count
                totals[PIPELINE + created_in] += amount
                totals[WEIGHTED + created_in] += amount_weighted
                totals[DAYS + created_in] += days
                counts[DAYS + created_in] += update_count
                if not created_in and st:
                    values = stages.get(st)
                    if values is None:
                        values = stages[st] = [0] * size
                        stage_counts[st] = [0] * size
                    values[OPEN] += count
                    values[PIPELINE] += amount
                    values[WEIGHTED] += amount_weighted
                    values[DAYS] += days
                    stage_counts[st][DAYS] += update_count
                continue
            # closed: won or lost in a period
            won = st in won_stages
            if not won and st != -1:
                continue
            closed_in, won_bucket, _day = (fine if st >= 0 else period_only)[ds]
            if closed_in is None:
                continue
            index = CLOSED + closed_in
            totals[index] += count
            team_values[index] += count
            user_values[index] += count
            index = (WON if won else LOST) + closed_in
            totals[index] += count
            team_values[index] += count
            user_values[index] += count
            if won:
                amount = (revenue or 0.0) * rate(company, ds)
                index = REVENUE + closed_in
                totals[index] += amount
                team_values[index] += amount
                user_values[index] += amount
                if cs is not None:
                    totals[CYCLE + closed_in] += cycle_sum or 0.0
                    counts[CYCLE + closed_in] += count
                if not closed_in:
                    values = won_buckets.setdefault(won_bucket, [0, 0.0])
                    values[0] += count
                    values[1] += amount
        # the groups counted in the previous period's totals only (see _query_period_figures)
        teams.pop(-1, None)
        users.pop(-1, None)
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
