from datetime import timedelta

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.osv import expression
from odoo.tools import SQL

from .crm_executive_dashboard import OPEN_DOMAIN, WON_DOMAIN

ANALYSES = ("funnel", "bottlenecks", "winloss", "roi")
# the per-stage norms are learned from the deals won in this many days up to the period's end
NORM_HISTORY_DAYS = 365
# a norm learned from fewer won deals is shown but flags no open deal
NORM_MIN_DEALS = 3
# the open deals over the norm listed on the Bottlenecks page (all are counted)
BOTTLENECK_LIST_LIMIT = 50
# segments of a breakdown (by team, salesperson, source) shown, the largest first
BREAKDOWN_LIMIT = 20


class CrmExecutiveDashboardAnalyses(models.AbstractModel):
    _inherit = "crm.executive.dashboard"

    # ------------------------------------------------------------
    # PUBLIC API
    # ------------------------------------------------------------

    @api.model
    def get_analysis(self, name, date_from, date_to, team_ids=None, user_ids=None):
        """One analysis of the dashboard (``ANALYSES``) for a period, as a JSON-able dict
        ``{"name", "period", "rows", "definitions", ...}``.

        Like ``get_dashboard_data``: the caller's record rules and active companies apply, every
        number comes with the (server-built) domain of its leads, and the number of queries
        does not depend on the number of leads. Bad input raises UserError.
        """
        if name not in ANALYSES:
            raise UserError(
                _(
                    "Unknown analysis %(name)r; choose one of: %(names)s.",
                    name=name,
                    names=", ".join(ANALYSES),
                )
            )
        p = self._dashboard_params(date_from, date_to, team_ids, user_ids)
        with self._planner(jit="off", work_mem="64MB"):
            data = getattr(self, "_analysis_%s" % name)(p)
        data.update(
            {
                "name": name,
                "period": {
                    "date_from": fields.Date.to_string(p["date_from"]),
                    "date_to": fields.Date.to_string(p["date_to"]),
                    "timezone": p["tz"].zone,
                },
                "filters": {"team_ids": p["team_ids"], "user_ids": p["user_ids"]},
                "company_ids": self.env.companies.ids,
                "currency": self._currency_info(p["currency"]),
                "definitions": self._analysis_definitions(name),
            }
        )
        return data

    # ------------------------------------------------------------
    # HELPERS
    # ------------------------------------------------------------

    @api.model
    def _analysis_domains(self, p):
        """Created in the period (the funnel's and ROI's cohort), won and lost in it."""
        domains = self._kpi_domains(p, p["from_utc"], p["to_utc"])
        return {
            "created": domains["total_leads"],
            "won": domains["won_opportunities"],
            "lost": domains["lost_opportunities"],
            "closed": domains["win_rate"],
        }

    @api.model
    def _stages_in_order(self, p):
        """The stages of the funnel, in the pipeline's order: those of the filtered teams (all
        teams without filter) and the shared ones."""
        domain = []
        if p["team_ids"]:
            domain = ["|", ("team_id", "=", False), ("team_id", "in", p["team_ids"])]
        return self.env["crm.stage"].search(domain, order="sequence, id")

    @api.model
    def _stays_sql(self, query):
        """SQL of the completed stays in a stage of the leads of ``query`` (a ``crm.lead``
        query): (lead_id, stage_id, days), from the stage history. Each change of stage ends a
        stay in the old stage, which began at the lead's previous change of stage, or at its
        creation."""
        self.env["crm.lead.stage.history"].flush_model()
        return SQL(
            """SELECT h.lead_id, h.stage_id,
                      EXTRACT(EPOCH FROM h.date_to - COALESCE(h.date_from, l.create_date))
                          / 86400.0 AS days
                 FROM (%s) l
                 JOIN crm_lead_stage_history h ON h.lead_id = l.id
                WHERE h.stage_id IS NOT NULL""",
            query.select("crm_lead.id", "crm_lead.create_date"),
        )

    @api.model
    def _stage_norms(self, domain, min_deals=1):
        """Usual time in each stage of the leads of ``domain`` (read under the caller's record
        rules; the sales agent calls it as superuser): ``{stage_id: {"median", "p75", "p90",
        "deals"}}`` in days, ``deals`` the number of leads behind each, for the stages with at
        least ``min_deals`` of them. Kept for the day per query (see
        ``crm.executive.dashboard.norm``)."""
        sql = SQL(
            """WITH stays AS (%s)
               SELECT stage_id,
                      percentile_cont(ARRAY[0.5, 0.75, 0.9]) WITHIN GROUP (ORDER BY days),
                      COUNT(DISTINCT lead_id)
                 FROM stays
                WHERE days >= 0
             GROUP BY stage_id""",
            self._stays_sql(self._lead_query(domain)),
        )

        def compute():
            self.env.cr.execute(sql)
            return {
                stage_id: {
                    "median": round(pct[0], 2),
                    "p75": round(pct[1], 2),
                    "p90": round(pct[2], 2),
                    "deals": deals,
                }
                for stage_id, pct, deals in self.env.cr.fetchall()
            }

        norms = self.env["crm.executive.dashboard.norm"].sudo()._get_or_compute(sql, compute)
        return {stage: norm for stage, norm in norms.items() if norm["deals"] >= min_deals}

    @api.model
    def _norm_domain(self, p, date_to=None):
        """The won deals the norms are learned from: won in the ``NORM_HISTORY_DAYS`` days up to
        the end of the period (``date_to``), with the page's team and salesperson filters."""
        stop = p["to_utc"] if date_to is None else date_to
        start = stop - timedelta(days=NORM_HISTORY_DAYS)
        return expression.AND(
            [p["base_domain"], WON_DOMAIN, self._range_domain("date_closed", start, stop)]
        )

    @api.model
    def _stuck_norms(self, min_deals=NORM_MIN_DEALS):
        """{stage_id: 90th percentile of the days won deals stayed in it}, learned from the deals
        of the caller's leads won in the last ``NORM_HISTORY_DAYS`` days up to the end of today
        (UTC; kept for the day like the page's, see ``crm.executive.dashboard.norm``): the norms
        of the Bottlenecks page up to today, for the sales agent's "stuck in stage" risk."""
        today = fields.Datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
        domain = self._norm_domain({"base_domain": []}, date_to=today + timedelta(days=1))
        return {stage: norm["p90"] for stage, norm in self._stage_norms(domain, min_deals).items()}

    @api.model
    def _names(self, model, ids):
        """{id: display name} of a few records (names only: read as superuser)."""
        records = self.env[model].sudo().with_context(active_test=False).browse(ids)
        return {record.id: record.display_name for record in records.exists()}

    # ------------------------------------------------------------
    # CONVERSION FUNNEL
    # ------------------------------------------------------------

    @api.model
    def _analysis_funnel(self, p):
        created = self._analysis_domains(p)["created"]
        stages = self._stages_in_order(p)
        stage_ids = stages.ids or [0]
        leads_from, leads_where = self._lead_from_where(created)
        self.env["crm.lead.stage.history"].flush_model()

        def position(column):
            return SQL("array_position(%s::int[], %s)", stage_ids, column)

        # the period's leads next to their stage history, both read in the order of their
        # indexes by (creation date, lead) (merge joins, no sort): the furthest stage (position
        # in ``stage_ids``) each lead has been in, counted per segment (rows with a GROUPING
        # mask), then the median of the completed stays per stage (rows with mask -1, the stage
        # in ``pos``). Hashing the leads of a year (half a million) cost twice as much; so did
        # grouping the joined rows by lead (a hash table of every lead): the history is
        # grouped by lead in its index order before the join. Without parallel scans the two
        # parts run side by side, each in a process of its own
        in_period = self._in_range_sql(SQL("h.lead_create_date"), p["from_utc"], p["to_utc"])
        with self._planner(
            enable_hashjoin="off",
            min_parallel_index_scan_size="8GB",
            min_parallel_table_scan_size="8GB",
        ):
            self.env.cr.execute(
                SQL(
                    """SELECT GROUPING(team_id, user_id, source_id), team_id, user_id, source_id,
                              pos, SUM(leads), NULL::float8
                         FROM (SELECT team_id, user_id, source_id, pos, COUNT(*) AS leads
                                 FROM (SELECT crm_lead.team_id, crm_lead.user_id,
                                              crm_lead.source_id,
                                              GREATEST(%(current)s, furthest.pos) AS pos
                                         FROM %(leads_from)s
                                    LEFT JOIN (SELECT h.lead_create_date, h.lead_id,
                                                      MAX(GREATEST(%(left)s, %(entered)s)) AS pos
                                                 FROM crm_lead_stage_history h
                                                WHERE %(in_period)s
                                             GROUP BY h.lead_create_date, h.lead_id) furthest
                                           ON furthest.lead_create_date = crm_lead.create_date
                                          AND furthest.lead_id = crm_lead.id
                                        WHERE %(leads_where)s) per_lead
                                WHERE pos IS NOT NULL
                             GROUP BY team_id, user_id, source_id, pos) segments
                     GROUP BY GROUPING SETS ((pos), (team_id, pos), (user_id, pos),
                                             (source_id, pos))
                    UNION ALL
                       SELECT -1, NULL, NULL, NULL, h.stage_id, NULL,
                              percentile_cont(0.5) WITHIN GROUP (ORDER BY stay.days)
                         FROM %(leads_from)s
                         JOIN crm_lead_stage_history h
                           ON h.lead_create_date = crm_lead.create_date
                          AND h.lead_id = crm_lead.id AND %(in_period)s
                   CROSS JOIN LATERAL (
                              SELECT date_part(
                                         'epoch',
                                         h.date_to - COALESCE(h.date_from, crm_lead.create_date)
                                     ) / 86400.0 AS days) stay
                        WHERE %(leads_where)s AND h.stage_id IS NOT NULL AND stay.days >= 0
                     GROUP BY h.stage_id""",
                    current=position(SQL("crm_lead.stage_id")),
                    left=position(SQL("h.stage_id")),
                    entered=position(SQL("h.next_stage_id")),
                    leads_from=leads_from,
                    leads_where=leads_where,
                    in_period=in_period,
                )
            )
            rows = self.env.cr.fetchall()
        # {segment key: {position: leads whose furthest stage is there}}
        furthest, medians = {}, {}
        masks = {7: None, 3: "team_id", 5: "user_id", 6: "source_id"}
        for mask, team_id, user_id, source_id, pos, count, median in rows:
            if mask == -1:
                medians[pos] = median
                continue
            dimension = masks[mask]
            value = {"team_id": team_id, "user_id": user_id, "source_id": source_id}.get(dimension)
            furthest.setdefault((dimension, value), {})[pos - 1] = count

        def reached(counts):
            total, result = 0, [0] * len(stages)
            for position in range(len(stages) - 1, -1, -1):
                total += counts.get(position, 0)
                result[position] = total
            return result

        def reached_domain(domain, stage):
            return expression.AND([domain, [("dashboard_reached_stage_ids", "in", [stage.id])]])

        overall = reached(furthest.get((None, None), {}))
        rows = []
        for position, stage in enumerate(stages):
            following = stages[position + 1] if position + 1 < len(stages) else None
            rows.append(
                {
                    "stage_id": stage.id,
                    "stage": stage.name,
                    "is_won": stage.is_won,
                    "reached": overall[position],
                    "conversion": self._rate(overall[position + 1], overall[position])
                    if following
                    else None,
                    "converted": overall[position + 1] if following else None,
                    "median_days": round(medians[stage.id], 1) if stage.id in medians else None,
                    "domain": reached_domain(created, stage),
                    "domains": {
                        "reached": reached_domain(created, stage),
                        "conversion": reached_domain(created, following) if following else None,
                        "median_days": expression.AND(
                            [created, [("dashboard_visited_stage_ids", "in", [stage.id])]]
                        ),
                    },
                }
            )
        breakdowns = {}
        for dimension, model in (
            ("team_id", "crm.team"),
            ("user_id", "res.users"),
            ("source_id", "utm.source"),
        ):
            segments = [
                (value, reached(counts))
                for (dim, value), counts in furthest.items()
                if dim == dimension
            ]
            segments.sort(key=lambda segment: -sum(segment[1]))
            segments = segments[:BREAKDOWN_LIMIT]
            names = self._names(model, [value for value, _counts in segments if value])
            breakdowns[dimension] = [
                {
                    "id": value or False,
                    "name": names.get(value, "") if value else _("None"),
                    "reached": counts,
                    "domains": [
                        reached_domain(
                            expression.AND([created, [(dimension, "=", value or False)]]), stage
                        )
                        for stage in stages
                    ],
                }
                for value, counts in segments
            ]
        return {
            "rows": rows,
            "stages": [{"id": stage.id, "name": stage.name} for stage in stages],
            "breakdowns": breakdowns,
            "total": overall[0] if overall else 0,
        }

    # ------------------------------------------------------------
    # BOTTLENECKS
    # ------------------------------------------------------------

    @api.model
    def _over_norm_domain(self, p, stage_id, p90, now):
        cutoff = now - timedelta(days=p90)
        return expression.AND(
            [
                p["base_domain"],
                OPEN_DOMAIN,
                [
                    ("type", "=", "opportunity"),
                    ("stage_id", "=", stage_id),
                    ("date_last_stage_update", "<", fields.Datetime.to_string(cutoff)),
                ],
            ]
        )

    @api.model
    def _analysis_bottlenecks(self, p):
        norm_domain = self._norm_domain(p)
        norms = self._stage_norms(norm_domain)
        stages = self._stages_in_order(p)
        now = fields.Datetime.now()
        over_domains = {
            stage_id: self._over_norm_domain(p, stage_id, norm["p90"], now)
            for stage_id, norm in norms.items()
            if norm["deals"] >= NORM_MIN_DEALS
        }
        Lead = self.env["crm.lead"].with_context(active_test=False)
        over_counts, deals = {}, []
        if over_domains:
            any_over = expression.OR(list(over_domains.values()))
            over_counts = {
                stage.id: count
                for stage, count in Lead._read_group(any_over, ["stage_id"], ["__count"])
            }
            for lead in Lead.search_read(
                any_over,
                [
                    "name",
                    "partner_name",
                    "user_id",
                    "team_id",
                    "stage_id",
                    "date_last_stage_update",
                ],
                limit=BOTTLENECK_LIST_LIMIT,
                order="date_last_stage_update, id",
            ):
                stage_id = lead["stage_id"][0]
                deals.append(
                    {
                        "id": lead["id"],
                        "name": lead["name"],
                        "customer": lead["partner_name"] or "",
                        "salesperson": lead["user_id"][1] if lead["user_id"] else "",
                        "team": lead["team_id"][1] if lead["team_id"] else "",
                        "stage": lead["stage_id"][1],
                        "days_in_stage": round(
                            (now - lead["date_last_stage_update"]).total_seconds() / 86400.0, 1
                        ),
                        "p90": norms[stage_id]["p90"],
                        "domain": [("id", "=", lead["id"])],
                    }
                )
        rows = []
        for stage in stages:
            norm = norms.get(stage.id)
            if not norm:
                continue
            learned = expression.AND(
                [norm_domain, [("dashboard_visited_stage_ids", "in", [stage.id])]]
            )
            rows.append(
                {
                    "stage_id": stage.id,
                    "stage": stage.name,
                    "median_days": norm["median"],
                    "p75_days": norm["p75"],
                    "p90_days": norm["p90"],
                    "deals": norm["deals"],
                    "reliable": norm["deals"] >= NORM_MIN_DEALS,
                    "over": over_counts.get(stage.id, 0),
                    "domain": learned,
                    "domains": {"deals": learned, "over": over_domains.get(stage.id)},
                }
            )
        # no reliable norm yet: the total (0) opens an empty list, as every figure does
        all_over = [("id", "in", [])]
        if over_domains:
            all_over = expression.OR(list(over_domains.values()))
        return {
            "rows": rows,
            "deals": deals,
            "over_total": sum(over_counts.values()),
            "over_domain": all_over,
            "norm_period": {
                "date_from": fields.Date.to_string(
                    (p["to_utc"] - timedelta(days=NORM_HISTORY_DAYS)).date()
                ),
                "date_to": fields.Date.to_string(p["date_to"]),
            },
        }

    # ------------------------------------------------------------
    # DEFINITIONS
    # ------------------------------------------------------------

    @api.model
    def _analysis_definitions(self, name):
        """One line per number of each analysis (readme/USAGE.md has the same)."""
        counted = _("archived leads that were not lost are not counted")
        definitions = {
            "funnel": {
                "reached": _(
                    "Leads created in the period (%(counted)s) that have been in this stage or "
                    "in a later one (stage history: every change of stage, the earlier ones from "
                    "the chatter's tracking of the stage).",
                    counted=counted,
                ),
                "conversion": _(
                    "Share of the leads that reached this stage which reached the next one."
                ),
                "median_days": _(
                    "Median days the leads created in the period stayed in the stage, over "
                    "their completed stays (from entering the stage, or creation, to leaving it)."
                ),
                "breakdown": _("Leads that reached each stage, by team, salesperson or source."),
            },
            "bottlenecks": {
                "norms": _(
                    "Usual time in each stage of the deals won in the %(days)s days up to the "
                    "end of the period: median, 75th and 90th percentile of their completed "
                    "stays; 'deals' is the number of won deals behind each norm.",
                    days=NORM_HISTORY_DAYS,
                ),
                "over": _(
                    "Open opportunities in the stage for longer than its 90th percentile (since "
                    "their last change of stage); only norms learned from %(min)s deals or more "
                    "flag deals. The sales agent's 'stuck in stage' risk uses the same norms.",
                    min=NORM_MIN_DEALS,
                ),
            },
            "winloss": {
                "lost_reasons": _(
                    "Leads lost in the period (archived with probability 0, closing date in the "
                    "period) by lost reason and team, source, stage where they were lost, or AI "
                    "band."
                ),
                "win_rate": _(
                    "Won / (won + lost) of the deals closed in the period, per segment; 'deals' "
                    "is the number of won and lost deals behind each rate. Revenue bands use the "
                    "expected revenue in the lead's company currency; AI bands: high >= 70, "
                    "medium 40-69, low < 40, not scored."
                ),
                "trend": _("Deals won and lost per day, week or month of their closing date."),
            },
            "roi": {
                "leads": _("Leads created in the period (%(counted)s).", counted=counted),
                "opportunities": _("Opportunities among them."),
                "won": _("Leads among them won since (active, in a won stage)."),
                "conversion": _("Opportunities / leads, like the main page's conversion rate."),
                "revenue": _(
                    "Expected revenue of the won ones, converted at the rate of the period's last "
                    "day."
                ),
                "cycle_days": _("Average days from creation to closing of those won."),
                "cost_per_lead": _("Cost / leads."),
                "cost_per_won": _("Cost / won deals."),
                "cost": _(
                    "Campaign costs whose period overlaps the page's period, prorated by the "
                    "days of overlap, converted at the rate of the period's last day; a cost "
                    "counts for its campaign, its source and its medium."
                ),
                "roi": _("(Won revenue - cost) / cost."),
            },
        }
        return definitions[name]
