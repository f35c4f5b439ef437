import logging
from datetime import timedelta

from odoo import _, api, models

from odoo.addons.llm_lead_scoring.lib import answers

from .crm_executive_dashboard import KPI_KEYS

_logger = logging.getLogger(__name__)

# the KPIs of the digest that are amounts (written without decimals) and rates (in %)
AMOUNT_KPIS = ("won_revenue", "avg_deal_size", "pipeline_value", "weighted_pipeline")
RATE_KPIS = ("conversion_rate", "win_rate")
MOVEMENTS = 3
TOP_RISKS = 5
COMMENTARY_MAX_CHARS = 900


class CrmDashboardDigest(models.AbstractModel):
    """The content of the scheduled PDF digest: the dashboard's own figures for a period (and
    their change against the previous one), the three biggest movements, the funnel when the
    analyses are installed, the top risks and a commentary. Private methods only: the public
    entry points are on ``crm.dashboard.digest.subscription``."""

    _name = "crm.dashboard.digest"
    _description = "CRM Dashboard Digest"

    @api.model
    def _kpi_labels(self):
        return {
            "total_leads": _("Leads created"),
            "total_opportunities": _("Opportunities created"),
            "won_opportunities": _("Deals won"),
            "lost_opportunities": _("Deals lost"),
            "won_revenue": _("Won revenue"),
            "conversion_rate": _("Lead to opportunity conversion"),
            "win_rate": _("Win rate"),
            "avg_deal_size": _("Average deal size"),
            "avg_sales_cycle_days": _("Average sales cycle (days)"),
            "pipeline_value": _("Open pipeline"),
            "weighted_pipeline": _("Weighted pipeline"),
        }

    @api.model
    def _format(self, key, value, currency=None):
        """A figure as the digest writes it (and as the commentary must quote it)."""
        if value is None:
            return "-"
        if key in AMOUNT_KPIS:
            text = f"{value:,.0f}"
            if currency and currency.position == "before":
                return "%s %s" % (currency.symbol, text)
            return "%s %s" % (text, currency.symbol) if currency else text
        if key in RATE_KPIS:
            return f"{value:,.1f} %"
        if isinstance(value, float) and not value.is_integer():
            return f"{value:,.1f}"
        return f"{value:,.0f}"

    @api.model
    def _format_change(self, change):
        if change is None:
            return _("new")
        return f"{change:+,.1f} %"

    @api.model
    def _digest_values(self, date_from, date_to, team_ids=None, user_ids=None):
        """Everything the digest shows, computed as the current user (record rules, allowed
        companies): the caller sets the subscriber's environment."""
        dashboard = self.env["crm.executive.dashboard"]
        data = dashboard.get_dashboard_data(date_from, date_to, team_ids, user_ids)
        currency = self.env.company.currency_id
        labels = self._kpi_labels()
        kpis = []
        for key in KPI_KEYS:
            kpi = data["kpis"][key]
            kpis.append(
                {
                    "key": key,
                    "label": labels[key],
                    "value": self._format(key, kpi["value"], currency),
                    "previous": self._format(key, kpi["previous"], currency),
                    "change": kpi["change"],
                    "change_text": self._format_change(kpi["change"]),
                }
            )
        # the biggest relative movements (a KPI without a previous value has no change)
        movements = sorted(
            (k for k in kpis if k["change"]), key=lambda k: (-abs(k["change"]), k["key"])
        )[:MOVEMENTS]
        values = {
            "date_from": data["period"]["date_from"],
            "date_to": data["period"]["date_to"],
            "previous_from": data["period"]["previous_from"],
            "previous_to": data["period"]["previous_to"],
            "currency": currency.name,
            "company": self.env.company.name,
            "user": self.env.user.name,
            "teams": ", ".join(self.env["crm.team"].browse(team_ids or []).mapped("name")),
            "empty": data["empty"],
            "kpis": kpis,
            "movements": movements,
            "funnel": self._digest_funnel(date_from, date_to, team_ids, user_ids),
            "risks": self._digest_risks(data),
        }
        values["facts"] = self._digest_facts(values)
        values["commentary"], values["commentary_source"] = self._digest_commentary(values)
        return values

    @api.model
    def _digest_funnel(self, date_from, date_to, team_ids, user_ids):
        """The conversion funnel of the analyses page, when that page is installed (None:
        the digest then has no funnel section)."""
        dashboard = self.env["crm.executive.dashboard"]
        if not hasattr(dashboard, "get_analysis"):
            return None
        analysis = dashboard.get_analysis("funnel", date_from, date_to, team_ids, user_ids)
        return [
            {
                "stage": row["stage"],
                "reached": row["reached"],
                "conversion": row.get("conversion"),
                "median_days": row.get("median_days"),
            }
            for row in analysis.get("rows", [])
        ]

    @api.model
    def _digest_risks(self, data):
        """What needs attention, from the figures the dashboard already has: salespeople with
        overdue activities, leads of low AI quality created in the period, failed AI
        enrichments, and the stage where open deals wait longest. Biggest first."""
        risks = []
        for row in data["agent_metrics"]:
            if row["activities_overdue"]:
                risks.append(
                    (
                        row["activities_overdue"],
                        _(
                            "%(name)s: %(count)s overdue activities",
                            name=row["name"],
                            count="{:,}".format(row["activities_overdue"]),
                        ),
                    )
                )
        ai = data["ai_insights"]
        low = ai["ai_score_distribution"]["low"]
        if low:
            risks.append(
                (
                    low,
                    _(
                        "%(count)s leads created with a low AI quality score (below 40)",
                        count=format(low, ","),
                    ),
                )
            )
        failed = ai["enrichment_stats"]["failed"]
        if failed:
            risks.append((failed, _("%(count)s AI enrichments failed", count=format(failed, ","))))
        stages = [s for s in data["pipeline"] if s["count"]]
        if stages:
            slowest = max(stages, key=lambda s: (s["avg_days_in_stage"], s["count"]))
            risks.append(
                (
                    slowest["count"],
                    _(
                        "%(count)s open deals in %(stage)s, %(days)s days there on average",
                        count="{:,}".format(slowest["count"]),
                        stage=slowest["name"],
                        days="{:,.1f}".format(slowest["avg_days_in_stage"]),
                    ),
                )
            )
        risks.sort(key=lambda r: -r[0])
        return [text for _count, text in risks[:TOP_RISKS]]

    @api.model
    def _digest_facts(self, values):
        """The report's figures as lines of text: what the LLM is given, and the only numbers
        its commentary may quote."""
        facts = [
            _(
                "Period: %(start)s to %(end)s, compared with %(prev_start)s to %(prev_end)s.",
                start=values["date_from"],
                end=values["date_to"],
                prev_start=values["previous_from"],
                prev_end=values["previous_to"],
            )
        ]
        for kpi in values["kpis"]:
            facts.append(
                _(
                    "%(label)s: %(value)s (previous period %(previous)s, change %(change)s).",
                    label=kpi["label"],
                    value=kpi["value"],
                    previous=kpi["previous"],
                    change=kpi["change_text"],
                )
            )
        for row in values["funnel"] or []:
            facts.append(
                _(
                    "Funnel stage %(stage)s: %(reached)s leads reached it.",
                    stage=row["stage"],
                    reached="{:,}".format(row["reached"]),
                )
            )
        facts.extend(_("Risk: %s", risk) for risk in values["risks"])
        return facts

    # ------------------------------------------------------------
    # COMMENTARY
    # ------------------------------------------------------------

    @api.model
    def _digest_commentary(self, values):
        """``(text, "llm" or "rules")``: the LLM's when the gateway has a provider for the
        ``digest`` purpose and its text quotes only the report's numbers, else by rules."""
        if not values["empty"] and self.env["llm.service"]._providers():
            text = self._digest_commentary_llm(values)
            if text:
                return text, "llm"
        return self._digest_commentary_rules(values), "rules"

    @api.model
    def _digest_commentary_llm(self, values):
        facts = "\n".join(values["facts"])
        system = (
            "You write the commentary of a weekly or monthly sales report for a sales manager: "
            "at most four short sentences, plain text, no list, no title. Quote only numbers "
            "that appear in the report as they are written there; never compute new ones."
        )
        prompt = "The report:\n%s\n\nWrite the commentary." % facts

        def validate(content):
            text = answers.check_text(
                content,
                prompt_texts=(prompt,),
                field="commentary",
                min_words=5,
                max_chars=COMMENTARY_MAX_CHARS,
            )
            return answers.check_numbers(text, [facts], field="commentary")

        result = self.env["llm.service"]._request(
            "digest",
            [{"role": "user", "content": prompt}],
            system_prompt=system,
            company=self.env.company,
            validate=validate,
        )
        if not result["success"]:
            _logger.info("Digest commentary by rules: %s", result.get("error"))
            return None
        return result.get("parsed") or None

    @api.model
    def _digest_commentary_rules(self, values):
        if values["empty"]:
            return _("No lead was created or closed in the period.")
        kpis = {k["key"]: k for k in values["kpis"]}
        sentences = [
            _(
                "%(leads)s leads were created (%(change)s) and %(won)s deals won for %(revenue)s.",
                leads=kpis["total_leads"]["value"],
                change=kpis["total_leads"]["change_text"],
                won=kpis["won_opportunities"]["value"],
                revenue=kpis["won_revenue"]["value"],
            )
        ]
        if values["movements"]:
            top = values["movements"][0]
            sentences.append(
                _(
                    "The biggest movement: %(label)s, %(change)s (from %(previous)s to "
                    "%(value)s).",
                    label=top["label"],
                    change=top["change_text"],
                    previous=top["previous"],
                    value=top["value"],
                )
            )
        sentences.append(
            _(
                "Win rate %(rate)s, open pipeline %(pipeline)s.",
                rate=kpis["win_rate"]["value"],
                pipeline=kpis["pipeline_value"]["value"],
            )
        )
        if values["risks"]:
            sentences.append(_("First risk: %s.", values["risks"][0]))
        return " ".join(sentences)

    @api.model
    def _digest_period(self, period, today):
        """``(start, end)`` of the last complete week (Monday to Sunday) or calendar month
        before ``today``: the period a digest sent on ``today`` reports on."""
        if period == "weekly":
            start = today - timedelta(days=today.weekday() + 7)
            return start, start + timedelta(days=6)
        end = today.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end
