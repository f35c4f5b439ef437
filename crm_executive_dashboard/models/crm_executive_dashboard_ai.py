from odoo import api, fields, models
from odoo.osv import expression
from odoo.tools import SQL

from .crm_executive_dashboard import (
    AI_ACCURACY_TOLERANCE,
    AI_FIGURES,
    AI_HIGH_SCORE,
    AI_LOW_SCORE,
    AI_QUERY_PARTS,
    COUNTED_DOMAIN,
    DASHBOARD_WORK_MEM,
    TOP_AI_LEADS,
)
from .crm_lead import AI_TABLE


class CrmExecutiveDashboardAi(models.AbstractModel):
    _inherit = "crm.executive.dashboard"

    @api.model
    def _query_ai_figures(self, p):
        """The AI figures (``AI_FIGURES``) of the leads created in the period, and the won rate
        by score band of the leads closed in it, in one query.

        The AI columns are read from the narrow copy of them the module keeps (``AI_TABLE``,
        see ``crm_lead.py``), not from crm_lead: no index of crm_lead holds an AI column, so
        that scoring a lead stays a HOT update. The leads created in the period are matched
        with their AI row in the order of both indexes on (creation date, id), the lead's
        ``crm_lead_dashboard_idx`` and the AI table's created index: a merge join of two
        index-only scans, where a hash join would hash every lead of the period; the period is
        cut in ``AI_QUERY_PARTS`` branches of a UNION ALL that PostgreSQL runs in parallel
        (Parallel Append). The scored leads closed in the period but created outside of it
        are found by closing date in the AI table (its closed index) and matched with their
        lead by (creation date, id), or by id for a lead without creation date.

        Each branch groups its leads by a few small keys (scored, score band, manual
        probability near the score, enrichment status, won or lost in the period) with plain
        sums, added up here: a few dozen groups, and each lead's conditions computed once
        rather than once per filtered aggregate (measured: a fifth less work per branch).
        """
        st = self._state_sql(p)
        # 1 won, 0 lost in the period, else NULL
        closed = SQL(
            "CASE WHEN %s THEN CASE WHEN %s THEN 1 WHEN %s THEN 0 END END",
            self._in_range_sql(SQL("crm_lead.date_closed"), p["from_utc"], p["to_utc"]),
            st["won"],
            st["lost"],
        )
        band = SQL(
            "CASE WHEN ai.score >= %(high)s THEN 'high' WHEN ai.score >= %(low)s THEN 'medium'"
            " WHEN ai.score < %(low)s THEN 'low' END",
            high=AI_HIGH_SCORE,
            low=AI_LOW_SCORE,
        )
        # the leads created in the period: every key, and the sums of their scores
        created_keys = SQL(
            """TRUE, ai.scored_at IS NOT NULL, %s,
               ABS(ai.score - COALESCE(crm_lead.probability, 0)) <= %s, ai.status, %s""",
            band,
            AI_ACCURACY_TOLERANCE,
            closed,
        )
        sums = SQL(
            """COUNT(*), SUM(ai.score), SUM(ai.completeness), COUNT(ai.completeness),
               SUM(ai.clarity), COUNT(ai.clarity), SUM(ai.engagement), COUNT(ai.engagement)"""
        )
        # the scored leads created outside of the period, closed in it: the won rates only
        # (the same columns and types, so that the branches are run in parallel)
        outside_keys = SQL("FALSE, TRUE, %s, NULL::boolean, NULL::varchar, %s", band, closed)
        no_sums = SQL(
            "COUNT(*), NULL::float8, NULL::float8, NULL::bigint, NULL::float8, NULL::bigint,"
            " NULL::float8, NULL::bigint"
        )

        # the leads the user may read, searched once; each branch adds its range
        leads_from, leads_where = self._lead_from_where(
            expression.AND([p["base_domain"], COUNTED_DOMAIN])
        )
        created = SQL("crm_lead.create_date")
        branches = []
        step = (p["to_utc"] - p["from_utc"]) / AI_QUERY_PARTS
        cuts = [p["from_utc"] + step * index for index in range(AI_QUERY_PARTS)] + [p["to_utc"]]
        for start, stop in zip(cuts, cuts[1:], strict=False):
            branches.append(
                SQL(
                    """(SELECT %s, %s FROM %s
                         JOIN %s ai ON ai.lead_create_date = crm_lead.create_date
                                   AND ai.lead_id = crm_lead.id AND %s
                        WHERE %s AND %s GROUP BY 2, 3, 4, 5, 6)""",
                    created_keys,
                    sums,
                    leads_from,
                    SQL.identifier(AI_TABLE),
                    self._in_range_sql(SQL("ai.lead_create_date"), start, stop),
                    leads_where,
                    self._in_range_sql(created, start, stop),
                )
            )
        leads_where = SQL(
            "%s AND %s", leads_where, self._outside_range_sql(created, p["from_utc"], p["to_utc"])
        )
        # the closing date is matched on the AI row's copy (its closed index drives the
        # branch), and on the lead in the keys: not on the lead's own index
        ai_closed = SQL(
            "%s AND ai.scored_at IS NOT NULL",
            self._in_range_sql(SQL("ai.lead_date_closed"), p["from_utc"], p["to_utc"]),
        )
        for join, created_outside in (
            (
                SQL("ai.lead_create_date = crm_lead.create_date AND ai.lead_id = crm_lead.id"),
                SQL(
                    "(ai.lead_create_date < %s OR ai.lead_create_date >= %s)",
                    p["from_utc"],
                    p["to_utc"],
                ),
            ),
            (SQL("ai.lead_id = crm_lead.id"), SQL("ai.lead_create_date IS NULL")),
        ):
            branches.append(
                SQL(
                    "(SELECT %s, %s FROM %s JOIN %s ai ON %s WHERE %s AND %s AND %s GROUP BY 3, 6)",
                    outside_keys,
                    no_sums,
                    leads_from,
                    SQL.identifier(AI_TABLE),
                    join,
                    ai_closed,
                    created_outside,
                    leads_where,
                )
            )
        # its own planner settings: merge joins rather than hashing the leads, whole branches
        # in the workers (see get_dashboard_data)
        with self._planner(
            jit="off",
            enable_hashjoin="off",
            enable_sort="off",
            work_mem=DASHBOARD_WORK_MEM,
            parallel_setup_cost=0,
            parallel_tuple_cost=0,
            min_parallel_index_scan_size="8GB",
            min_parallel_table_scan_size="8GB",
        ):
            self.env.cr.execute(SQL(" UNION ALL ").join(branches))
            rows = self.env.cr.fetchall()
        figures = dict.fromkeys(AI_FIGURES, 0)
        for created_in, scored, band, accurate, status, won, count, *row_sums in rows:
            if scored and band in ("high", "low") and won is not None:
                figures["closed_%s" % band] += count
                figures["won_%s" % band] += count * won
            if not created_in:
                continue
            if status in ("completed", "failed"):
                figures[status] += count
            elif status in ("pending", "processing"):
                figures["pending"] += count
            if not scored:
                continue
            figures["scored"] += count
            if band:
                figures[band] += count
            if accurate:
                figures["accurate"] += count
            score, *values = row_sums
            figures["score"] += score or 0
            for name, value in zip(AI_FIGURES[9:15], values, strict=True):
                figures[name] += value or 0
        return figures

    @api.model
    def _top_ai_leads(self, p, domain):
        """The ``TOP_AI_LEADS`` leads of ``domain`` with the highest AI score: read in the order
        of the narrow AI table's index on the score, the first ones are found without sorting
        the scored leads."""
        leads_from, leads_where = self._lead_from_where(domain)
        self.env.cr.execute(
            SQL(
                """SELECT crm_lead.id FROM %s JOIN %s ai ON ai.lead_id = crm_lead.id
                    WHERE %s AND ai.scored_at IS NOT NULL AND ai.score IS NOT NULL
                 ORDER BY ai.score DESC, ai.lead_id DESC LIMIT %s""",
                leads_from,
                SQL.identifier(AI_TABLE),
                leads_where,
                TOP_AI_LEADS,
            )
        )
        ids = [row[0] for row in self.env.cr.fetchall()]
        leads = self.env["crm.lead"].with_context(active_test=False).browse(ids)
        return leads.read(
            [
                "name",
                "partner_id",
                "partner_name",
                "ai_probability_score",
                "expected_revenue",
                "stage_id",
                "user_id",
                "company_id",
            ]
        )

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
        """The AI section from its figures (see ``_query_ai_figures``), plus the top leads."""
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
        scored = [("ai_last_enrichment_date", "!=", False)]
        scored_domain = expression.AND([created_domain, scored])
        # the scored leads won or lost in the period, whatever their creation date
        closed_scored = expression.AND(
            [self._kpi_domains(p, p["from_utc"], p["to_utc"])["win_rate"], scored]
        )
        high_score = [("ai_probability_score", ">=", AI_HIGH_SCORE)]
        low_score = [("ai_probability_score", "<", AI_LOW_SCORE)]
        top = self._top_ai_leads(p, created_domain)
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
                "high": expression.AND([scored_domain, high_score]),
                "medium": expression.AND(
                    [
                        scored_domain,
                        [
                            ("ai_probability_score", ">=", AI_LOW_SCORE),
                            ("ai_probability_score", "<", AI_HIGH_SCORE),
                        ],
                    ]
                ),
                "low": expression.AND([scored_domain, low_score]),
                "closed_high": expression.AND([closed_scored, high_score]),
                "closed_low": expression.AND([closed_scored, low_score]),
                "completed": expression.AND(
                    [created_domain, [("ai_enrichment_status", "=", "completed")]]
                ),
                "pending": expression.AND(
                    [created_domain, [("ai_enrichment_status", "in", ["pending", "processing"])]]
                ),
                "failed": expression.AND(
                    [created_domain, [("ai_enrichment_status", "=", "failed")]]
                ),
            },
        }
