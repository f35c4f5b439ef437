import io

import xlsxwriter

from odoo import _, api, models


class CrmExecutiveDashboardExport(models.AbstractModel):
    _inherit = "crm.executive.dashboard"

    @api.model
    def _export_xlsx(self, data):
        """The page's figures (``get_dashboard_data``) as an .xlsx workbook, one sheet per
        section. Texts (names of leads, customers, teams) are written as strings, never as
        formulas or links, whatever they start with."""
        output = io.BytesIO()
        workbook = xlsxwriter.Workbook(output, {"in_memory": True})
        bold = workbook.add_format({"bold": True, "bg_color": "#E9ECEF", "border": 1})
        title = workbook.add_format({"bold": True, "font_size": 14})
        decimals = data["currency"]["decimal_places"]
        money = workbook.add_format(
            {"num_format": "#,##0" + ("." + "0" * decimals if decimals else "")}
        )
        number = workbook.add_format({"num_format": "0.0"})

        def text(value):
            return "" if value in (None, False) else str(value)

        def table(sheet, heading, columns, rows):
            sheet.write_string(0, 0, heading, title)
            for col, (label, _key, _fmt) in enumerate(columns):
                sheet.write_string(2, col, label, bold)
                sheet.set_column(col, col, max(14, len(label) + 2))
            for row_index, row in enumerate(rows, start=3):
                for col, (_label, key, fmt) in enumerate(columns):
                    value = row.get(key)
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        sheet.write_number(row_index, col, value, fmt)
                    else:
                        sheet.write_string(row_index, col, text(value))

        period = data["period"]
        money_kpis = {"won_revenue", "avg_deal_size", "pipeline_value", "weighted_pipeline"}
        kpi_rows = [
            {
                "kpi": key,
                "value": kpi["value"],
                "previous": kpi["previous"],
                "delta": kpi["delta"],
                "change": kpi["change"],
                "definition": data["definitions"].get(key, ""),
            }
            for key, kpi in data["kpis"].items()
        ]
        sheet = workbook.add_worksheet(_("KPIs"))
        table(
            sheet,
            _(
                "CRM Dashboard %(start)s to %(end)s (previous: %(pstart)s to %(pend)s), "
                "%(currency)s",
                start=period["date_from"],
                end=period["date_to"],
                pstart=period["previous_from"],
                pend=period["previous_to"],
                currency=data["currency"]["name"],
            ),
            [
                (_("KPI"), "kpi", None),
                (_("Value"), "value", number),
                (_("Previous period"), "previous", number),
                (_("Difference"), "delta", number),
                (_("Change %"), "change", number),
                (_("Definition"), "definition", None),
            ],
            kpi_rows,
        )
        for row_index, row in enumerate(kpi_rows, start=3):
            if row["kpi"] in money_kpis:
                for col in (1, 2, 3):
                    sheet.write_number(
                        row_index, col, row[("value", "previous", "delta")[col - 1]], money
                    )
        sheet.set_column(0, 0, 24)

        table(
            workbook.add_worksheet(_("Pipeline")),
            _("Open opportunities by stage"),
            [
                (_("Stage"), "name", None),
                (_("Count"), "count", None),
                (_("Expected revenue"), "expected_revenue", money),
                (_("Weighted revenue"), "weighted_revenue", money),
                (_("Avg days in stage"), "avg_days_in_stage", number),
            ],
            data["pipeline"],
        )
        performance_columns = [
            (_("Leads"), "leads", None),
            (_("Opportunities"), "opportunities", None),
            (_("Won"), "won", None),
            (_("Lost"), "lost", None),
            (_("Revenue"), "revenue", money),
            (_("Conversion %"), "conversion_rate", number),
            (_("Win rate %"), "win_rate", number),
            (_("Activities done"), "activities_done", None),
            (_("Activities overdue"), "activities_overdue", None),
        ]
        table(
            workbook.add_worksheet(_("Teams")),
            _("Sales teams"),
            [(_("Team"), "name", None)] + performance_columns,
            data["team_performance"],
        )
        table(
            workbook.add_worksheet(_("Salespeople")),
            _("Salespeople"),
            [(_("Salesperson"), "name", None)] + performance_columns,
            data["agent_metrics"],
        )
        table(
            workbook.add_worksheet(_("Forecast")),
            _("Open opportunities by expected closing month"),
            [
                (_("Month"), "month", None),
                (_("Opportunities"), "count", None),
                (_("Weighted"), "weighted", money),
                (_("Best case"), "best_case", money),
                (_("Worst case"), "worst_case", money),
            ],
            data["forecast"],
        )
        ai = data["ai_insights"]
        ai_rows = [
            {"label": _("AI-scored leads"), "value": ai["total_ai_scored"]},
            {"label": _("Average quality score"), "value": ai["avg_ai_score"]},
            {"label": _("High quality leads (score >= 70)"), "value": ai["high_quality_leads"]},
            {"label": _("Score high (>= 70)"), "value": ai["ai_score_distribution"]["high"]},
            {"label": _("Score medium (40-69)"), "value": ai["ai_score_distribution"]["medium"]},
            {"label": _("Score low (< 40)"), "value": ai["ai_score_distribution"]["low"]},
            {"label": _("AI vs manual accuracy %"), "value": ai["ai_vs_manual_accuracy"]},
            {"label": _("Enrichment completed"), "value": ai["enrichment_stats"]["completed"]},
            {"label": _("Enrichment pending"), "value": ai["enrichment_stats"]["pending"]},
            {"label": _("Enrichment failed"), "value": ai["enrichment_stats"]["failed"]},
            {"label": _("Average completeness"), "value": ai["ai_completeness_avg"]},
            {"label": _("Average clarity"), "value": ai["ai_clarity_avg"]},
            {"label": _("Average engagement"), "value": ai["ai_engagement_avg"]},
            {
                "label": _("Win rate of closed high-score leads %"),
                "value": ai["won_by_ai_band"]["high"]["win_rate"],
            },
            {
                "label": _("Win rate of closed low-score leads %"),
                "value": ai["won_by_ai_band"]["low"]["win_rate"],
            },
        ]
        sheet = workbook.add_worksheet(_("AI insights"))
        table(
            sheet,
            _("AI insights"),
            [(_("Figure"), "label", None), (_("Value"), "value", None)],
            ai_rows,
        )
        sheet.set_column(0, 0, 40)
        start = len(ai_rows) + 5
        sheet.write_string(start, 0, _("Top leads by quality score"), title)
        headers = [
            (_("Lead"), "name"),
            (_("Customer"), "partner"),
            (_("Quality score"), "score"),
            (_("Expected revenue"), "expected_revenue"),
            (_("Stage"), "stage"),
            (_("Salesperson"), "salesperson"),
        ]
        for col, (label, _key) in enumerate(headers):
            sheet.write_string(start + 1, col, label, bold)
        for row_index, lead in enumerate(ai["top_ai_scored_leads"], start=start + 2):
            for col, (_label, key) in enumerate(headers):
                value = lead[key]
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    sheet.write_number(row_index, col, value)
                else:
                    sheet.write_string(row_index, col, text(value))
        workbook.close()
        return output.getvalue()
