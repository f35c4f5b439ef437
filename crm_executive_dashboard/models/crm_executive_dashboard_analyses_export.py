import io

import xlsxwriter

from odoo import _, api, models


class CrmExecutiveDashboardAnalysesExport(models.AbstractModel):
    _inherit = "crm.executive.dashboard"

    @api.model
    def _analysis_sheets(self, data):
        """[(sheet name, [(column label, key)], rows)] of an analysis (``get_analysis``)."""
        name = data["name"]
        if name == "funnel":
            sheets = [
                (
                    _("Funnel"),
                    [
                        (_("Stage"), "stage"),
                        (_("Reached"), "reached"),
                        (_("Conversion to next %"), "conversion"),
                        (_("Median days in stage"), "median_days"),
                    ],
                    data["rows"],
                )
            ]
            for key, label in (
                ("team_id", _("By team")),
                ("user_id", _("By salesperson")),
                ("source_id", _("By source")),
            ):
                columns = [(_("Segment"), "name")] + [
                    (stage["name"], "stage_%s" % index)
                    for index, stage in enumerate(data["stages"])
                ]
                rows = [
                    dict(
                        {"name": segment["name"]},
                        **{"stage_%s" % i: count for i, count in enumerate(segment["reached"])},
                    )
                    for segment in data["breakdowns"][key]
                ]
                sheets.append((label, columns, rows))
            return sheets
        if name == "bottlenecks":
            return [
                (
                    _("Stage norms"),
                    [
                        (_("Stage"), "stage"),
                        (_("Median days"), "median_days"),
                        (_("75th percentile"), "p75_days"),
                        (_("90th percentile"), "p90_days"),
                        (_("Won deals"), "deals"),
                        (_("Open deals over the 90th percentile"), "over"),
                    ],
                    data["rows"],
                ),
                (
                    _("Deals over the norm"),
                    [
                        (_("Opportunity"), "name"),
                        (_("Customer"), "customer"),
                        (_("Salesperson"), "salesperson"),
                        (_("Team"), "team"),
                        (_("Stage"), "stage"),
                        (_("Days in stage"), "days_in_stage"),
                        (_("90th percentile"), "p90"),
                    ],
                    data["deals"],
                ),
            ]
        if name == "winloss":
            return [
                (
                    _("Win rate"),
                    [
                        (_("Segment"), "segment"),
                        (_("Value"), "name"),
                        (_("Won"), "won"),
                        (_("Lost"), "lost"),
                        (_("Deals"), "deals"),
                        (_("Win rate %"), "win_rate"),
                    ],
                    data["rows"],
                ),
                (
                    _("Lost reasons"),
                    [
                        (_("By"), "by"),
                        (_("Value"), "name"),
                        (_("Lost reason"), "reason"),
                        (_("Lost"), "count"),
                    ],
                    [
                        dict(row, by=key)
                        for key, rows in data["lost_reasons"].items()
                        for row in rows
                    ],
                ),
                (
                    _("Trend"),
                    [(_("Period"), "label"), (_("Won"), "won"), (_("Lost"), "lost")],
                    data["trend"],
                ),
            ]
        return [
            (
                _("ROI"),
                [
                    (_("Dimension"), "dimension"),
                    (_("Value"), "name"),
                    (_("Leads"), "leads"),
                    (_("Opportunities"), "opportunities"),
                    (_("Won"), "won"),
                    (_("Won revenue"), "revenue"),
                    (_("Conversion %"), "conversion"),
                    (_("Sales cycle (days)"), "cycle_days"),
                    (_("Cost"), "cost"),
                    (_("Cost per lead"), "cost_per_lead"),
                    (_("Cost per won deal"), "cost_per_won"),
                    (_("ROI %"), "roi"),
                ],
                data["rows"],
            )
        ]

    @api.model
    def _export_analysis_xlsx(self, data):
        """An analysis as an .xlsx workbook: one sheet per table, then the definitions. Texts
        are written as strings, never as formulas or links, whatever they start with."""
        output = io.BytesIO()
        workbook = xlsxwriter.Workbook(output, {"in_memory": True})
        bold = workbook.add_format({"bold": True, "bg_color": "#E9ECEF", "border": 1})
        title = workbook.add_format({"bold": True, "font_size": 14})
        number = workbook.add_format({"num_format": "#,##0.##"})
        heading = _(
            "%(analysis)s, %(start)s to %(end)s, %(currency)s",
            analysis=data["name"],
            start=data["period"]["date_from"],
            end=data["period"]["date_to"],
            currency=data["currency"]["name"],
        )
        sheets = self._analysis_sheets(data)
        sheets.append(
            (
                _("Definitions"),
                [(_("Figure"), "key"), (_("Definition"), "text")],
                [{"key": key, "text": text} for key, text in data["definitions"].items()],
            )
        )
        for sheet_name, columns, rows in sheets:
            sheet = workbook.add_worksheet(sheet_name[:31])
            sheet.write_string(0, 0, heading, title)
            for col, (label, _key) in enumerate(columns):
                sheet.write_string(2, col, str(label), bold)
                sheet.set_column(col, col, max(14, len(str(label)) + 2))
            for row_index, row in enumerate(rows, start=3):
                for col, (_label, key) in enumerate(columns):
                    value = row.get(key)
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        sheet.write_number(row_index, col, value, number)
                    else:
                        sheet.write_string(
                            row_index, col, "" if value in (None, False) else str(value)
                        )
        workbook.close()
        return output.getvalue()
