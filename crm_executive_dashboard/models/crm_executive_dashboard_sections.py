from datetime import timedelta

from dateutil.relativedelta import relativedelta

from odoo import _, api, fields, models
from odoo.osv import expression
from odoo.tools import SQL

from .crm_executive_dashboard import (
    COUNTED_DOMAIN,
    FORECAST_COMMIT_PROBABILITY,
    FORECAST_MONTHS,
    KPI_KEYS,
    OPEN_DOMAIN,
)


class CrmExecutiveDashboardSections(models.AbstractModel):
    _inherit = "crm.executive.dashboard"

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
        """Per bucket: leads created and deals won, each with the domain of its leads (the KPI's
        domain restricted to the bucket's part of the period)."""
        tz = p["tz"]
        buckets = []
        for start, stop in self._bucket_starts(p):
            if start > p["today"]:
                break  # the future of a period that is not over: no bucket falling to zero
            # the bucket's part inside the period
            start_utc = self._utc_bound(max(start, p["date_from"]), tz)
            stop_utc = self._utc_bound(min(stop, p["date_to"] + timedelta(days=1)), tz)
            domains = self._kpi_domains(p, start_utc, stop_utc)
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
                    "domains": {
                        "leads": domains["total_leads"],
                        "won": domains["won_opportunities"],
                    },
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
        done_domain = self._activities_done_domain(p)
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
                # the rows of Odoo's Activities report (crm.activity.report) behind "done"
                "activities_done_domain": expression.AND(
                    [done_domain, [(field, "=", key or False)]]
                ),
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
        leads_from, leads_where = self._lead_from_where(domain)
        step_key, rate_of = self._rate_step(p, SQL("crm_lead.create_date"))
        # amounts by month, company and rate step of the creation date (open leads are
        # converted at their creation date), converted afterwards; summed as numeric (a
        # numeric is converted to float8 through its text, see _query_period_figures)
        self.env.cr.execute(
            SQL(
                """SELECT date_trunc('month', crm_lead.date_deadline)::date, crm_lead.company_id,
                      %(step)s, COUNT(*),
                      SUM(crm_lead.expected_revenue::float8 * crm_lead.probability),
                      SUM(crm_lead.expected_revenue),
                      SUM(crm_lead.expected_revenue)
                          FILTER (WHERE crm_lead.probability >= %(commit)s)
                 FROM %(from)s WHERE %(where)s GROUP BY 1, 2, 3""",
                step=step_key,
                commit=FORECAST_COMMIT_PROBABILITY,
                **{"from": leads_from, "where": leads_where},
            )
        )
        by_month = {}
        for month, company_id, step, count, weighted, best, worst in self.env.cr.fetchall():
            rate = rate_of(company_id, step)
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
    def _definitions(self):
        """One line per KPI and chart: which leads (or activities) it counts, and by which date.
        Shown as tooltips on the page and written in the export (readme/USAGE.md has the same)."""
        return {
            "total_leads": _(
                "Leads and opportunities created in the period, lost ones included; archived "
                "leads that were not lost are not counted."
            ),
            "total_opportunities": _("Opportunities among the leads created in the period."),
            "won_opportunities": _(
                "Active leads in a won stage whose closing date is in the period."
            ),
            "lost_opportunities": _(
                "Lost leads (archived at 0 % probability) whose closing date is in the period."
            ),
            "won_revenue": _(
                "Expected revenue of the leads won in the period, converted at their closing date."
            ),
            "conversion_rate": _("Opportunities created / leads created, in the period."),
            "win_rate": _("Won / (won + lost), of the leads closed in the period."),
            "avg_deal_size": _("Won revenue / number of leads won in the period."),
            "avg_sales_cycle_days": _(
                "Average days from creation to closing of the leads won in the period."
            ),
            "pipeline_value": _(
                "Expected revenue of the opportunities created in the period and still open."
            ),
            "weighted_pipeline": _(
                "Expected revenue × probability of the opportunities created in the period and "
                "still open."
            ),
            "pipeline": _(
                "Opportunities created in the period and still open, by stage: expected and "
                "weighted revenue, average days since the last stage change."
            ),
            "forecast": _(
                "Open opportunities (whenever created) by expected closing month: weighted, best "
                "case (all close), worst case (only those at 70 % or more close)."
            ),
            "trends": _(
                "Per day, week or month of the period: leads created (creation date), deals won "
                "and their revenue (closing date)."
            ),
            "ai": _(
                "Leads created in the period and scored by the AI, by band of their quality "
                "score (rules + LLM, 0-100): high 70 and above, medium 40 to 69, low below 40. "
                "Won if high / low: of the scored leads won or lost in the period, whatever "
                "their creation date, with a high / low score, the share won (how many in "
                "brackets). Enriched, pending / failed: leads created in the period by the state "
                "of their AI enrichment. The win probability is another number: the learned "
                "model's, or Odoo's PLS."
            ),
            "team_revenue": _("Revenue of the leads won in the period, per sales team."),
            "performance": _(
                "Per salesperson or team of the lead: leads created, won and lost in the period, "
                "their revenue and rates."
            ),
            "activities_done": _(
                "Activities marked done in the period on active leads, as Odoo's Activities "
                "report (CRM > Reporting > Activities) counts them."
            ),
            "activities_overdue": _(
                "Planned activities of active leads due before today (Odoo's Late activities); "
                "activities marked done are not counted, even when their type keeps them."
            ),
            "top_leads": _(
                "The leads created in the period with the highest quality score (rules + "
                "LLM, 0-100; not the win probability)."
            ),
        }
