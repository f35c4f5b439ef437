import pytz

from odoo import api, fields, models
from odoo.tools import SQL

from .crm_executive_dashboard import FIGURES, KPI_KEYS

# the queries behind each KPI: leads created in the period, leads closed (won or lost) in it,
# won leads with their amounts and cycle, open pipeline with its amounts
KPI_FAMILIES = {
    "total_leads": "created",
    "total_opportunities": "created",
    "conversion_rate": "created",
    "won_opportunities": "closed",
    "lost_opportunities": "closed",
    "win_rate": "closed",
    "won_revenue": "won",
    "avg_deal_size": "won",
    "avg_sales_cycle_days": "won",
    "pipeline_value": "pipeline",
    "weighted_pipeline": "pipeline",
}


class CrmExecutiveDashboardKpi(models.AbstractModel):
    """Single KPIs of the current period without the whole dashboard (the sales copilot asks
    one figure at a time).

    Each KPI is computed from the dashboard's own definitions: the leads of its domain in
    ``_kpi_domains`` (record rules through ``_lead_query``), amounts converted by
    ``_period_conversion`` at the same date as the main query (closing date of won leads,
    creation date of open ones), and the formulas of ``_kpi_values``. One narrow query per
    family of KPIs, grouped by company and currency rate step only, instead of the main
    query's thousands of groups over both periods (tests: the values and domains equal
    ``get_dashboard_data``'s).
    """

    _inherit = "crm.executive.dashboard"

    @api.model
    def _get_kpis(self, p, keys=KPI_KEYS):
        """``{key: {"value", "domain"}}`` of the current period for ``keys`` (``p``: from
        ``_dashboard_params``)."""
        domains = self._kpi_domains(p, p["from_utc"], p["to_utc"])
        totals = dict.fromkeys(
            ("%s_%s" % (name, suffix) for name in FIGURES for suffix in ("cur", "prev")), 0
        )
        for family in dict.fromkeys(KPI_FAMILIES[key] for key in keys):
            totals.update(getattr(self, "_kpi_totals_%s" % family)(p, domains))
        values = self._kpi_values(totals, "cur", p["currency"])
        return {key: {"value": values[key], "domain": domains[key]} for key in keys}

    @api.model
    def _get_pipeline(self, p):
        """The open pipeline by stage of the current period, as ``get_dashboard_data``'s
        ``pipeline`` (``_build_pipeline``), from one query grouped by stage."""
        domain = self._kpi_domains(p, p["from_utc"], p["to_utc"])["pipeline_value"]
        rows = self._kpi_rows(
            p,
            domain,
            "create_date",
            SQL(
                """COUNT(*), SUM(crm_lead.expected_revenue),
                   SUM(crm_lead.expected_revenue::float8 * crm_lead.probability),
                   SUM(date_part('epoch', crm_lead.date_last_stage_update)),
                   COUNT(crm_lead.date_last_stage_update)"""
            ),
            group=SQL("crm_lead.stage_id"),
        )
        now = fields.Datetime.now().replace(tzinfo=pytz.utc).timestamp()
        stages, day_counts = {}, {}
        for stage, rate, count, revenue, weighted, update_sum, update_count in rows:
            if not stage:
                continue  # as the main query: no stage, no column of the pipeline
            values = stages.setdefault(
                stage, {"open_cur": 0, "pipeline_cur": 0.0, "weighted_cur": 0.0, "days": 0.0}
            )
            values["open_cur"] += count
            values["pipeline_cur"] += (revenue or 0.0) * rate
            values["weighted_cur"] += (weighted or 0.0) * rate / 100.0
            values["days"] += update_count * now - (update_sum or 0.0)
            day_counts[stage] = day_counts.get(stage, 0) + update_count
        for stage, values in stages.items():
            days = values.pop("days")
            values["stage_days_cur"] = (
                days / day_counts[stage] / 86400.0 if day_counts[stage] else 0
            )
        return self._build_pipeline(p, stages)

    # ------------------------------------------------------------
    # ONE QUERY PER FAMILY
    # ------------------------------------------------------------

    @api.model
    def _kpi_rows(self, p, domain, date_field, aggregates, group=None):
        """Rows ``(group..., rate, aggregates...)`` of the leads of ``domain``: grouped by
        company and currency rate step of ``date_field`` (then ``group``), ``rate`` the factor
        converting the company's amounts at that step (as ``_roll_up`` and ``_get_forecast``
        do); leads without that date are not converted."""
        step_key, rate_of = self._rate_step(p, SQL.identifier("crm_lead", date_field))
        leads_from, leads_where = self._lead_from_where(domain)
        keys = [SQL("crm_lead.company_id"), step_key]
        if group:
            keys.insert(0, group)
        self.env.cr.execute(
            SQL(
                "SELECT %s, %s FROM %s WHERE %s GROUP BY %s",
                SQL(", ").join(keys),
                aggregates,
                leads_from,
                leads_where,
                SQL(", ").join(keys),
            )
        )
        result = []
        for row in self.env.cr.fetchall():
            head, (company_id, step), tail = (
                row[: len(keys) - 2],
                row[len(keys) - 2 : len(keys)],
                row[len(keys) :],
            )
            result.append((*head, rate_of(company_id, step), *tail))
        return result

    @api.model
    def _kpi_totals_created(self, p, domains):
        self.env.cr.execute(
            SQL(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE %s) FROM %s WHERE %s",
                self._state_sql(p)["opp"],
                *self._lead_from_where(domains["total_leads"]),
            )
        )
        leads, opps = self.env.cr.fetchone()
        return {"leads_cur": leads, "opps_cur": opps}

    @api.model
    def _kpi_totals_closed(self, p, domains):
        state = self._state_sql(p)
        self.env.cr.execute(
            SQL(
                "SELECT COUNT(*) FILTER (WHERE %s), COUNT(*) FILTER (WHERE %s) FROM %s WHERE %s",
                state["won"],
                state["lost"],
                *self._lead_from_where(domains["win_rate"]),
            )
        )
        won, lost = self.env.cr.fetchone()
        return {"won_cur": won, "lost_cur": lost, "closed_cur": won + lost}

    @api.model
    def _kpi_totals_won(self, p, domains):
        rows = self._kpi_rows(
            p,
            domains["won_opportunities"],
            "date_closed",
            SQL(
                """COUNT(*), SUM(crm_lead.expected_revenue),
                   SUM(date_part('epoch', crm_lead.date_closed - crm_lead.create_date)),
                   COUNT(crm_lead.create_date)"""
            ),
        )
        won, revenue, cycle, cycle_count = 0, 0.0, 0.0, 0
        for rate, count, amount, cycle_sum, created in rows:
            won += count
            revenue += (amount or 0.0) * rate
            cycle += cycle_sum or 0.0
            cycle_count += created
        return {
            "won_cur": won,
            "revenue_cur": revenue,
            "cycle_cur": cycle / cycle_count / 86400.0 if cycle_count else 0,
        }

    @api.model
    def _kpi_totals_pipeline(self, p, domains):
        rows = self._kpi_rows(
            p,
            domains["pipeline_value"],
            "create_date",
            SQL(
                """SUM(crm_lead.expected_revenue),
                   SUM(crm_lead.expected_revenue::float8 * crm_lead.probability)"""
            ),
        )
        pipeline = sum((revenue or 0.0) * rate for rate, revenue, _weighted in rows)
        weighted = sum((weighted or 0.0) * rate / 100.0 for rate, _revenue, weighted in rows)
        return {"pipeline_cur": pipeline, "weighted_cur": weighted}
