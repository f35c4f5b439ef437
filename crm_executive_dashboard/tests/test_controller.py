import io
import re
import zipfile
from xml.etree import ElementTree

from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tests.common import JsonRpcException
from odoo.tools import mute_logger

from .common import PERIOD, DashboardCommon

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def read_xlsx(content):
    """{sheet name: [[cell values]]} from an .xlsx, with the standard library only."""
    book = zipfile.ZipFile(io.BytesIO(content))
    shared = []
    if "xl/sharedStrings.xml" in book.namelist():
        root = ElementTree.fromstring(book.read("xl/sharedStrings.xml"))
        shared = [
            "".join(t.text or "" for t in si.iter("{%s}t" % NS["m"]))
            for si in root.findall("m:si", NS)
        ]
    workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
    names = [sheet.get("name") for sheet in workbook.find("m:sheets", NS)]
    sheets = {}
    for index, name in enumerate(names, start=1):
        root = ElementTree.fromstring(book.read("xl/worksheets/sheet%d.xml" % index))
        rows = []
        for row in root.iter("{%s}row" % NS["m"]):
            while len(rows) < int(row.get("r")) - 1:
                rows.append([])
            cells = {}
            for cell in row.findall("m:c", NS):
                column = re.match(r"[A-Z]+", cell.get("r")).group()
                value = cell.find("m:v", NS)
                if value is None:
                    continue
                if cell.get("t") == "s":
                    cells[column] = shared[int(value.text)]
                else:
                    cells[column] = float(value.text)
            width = max((ord(c) - 64 for c in cells), default=0)
            rows.append([cells.get(chr(65 + i)) for i in range(width)])
        sheets[name] = rows
    return sheets


@tagged("post_install", "-at_install", "crm_executive_dashboard")
class TestDashboardController(HttpCase, DashboardCommon):
    def data(self, **params):
        return self.make_jsonrpc_request("/crm/dashboard/data", params)

    def test_data_route(self):
        self.authenticate("dash_manager", "dash_manager")
        result = self.data(
            date_from=PERIOD[0],
            date_to=PERIOD[1],
            allowed_company_ids=[self.company_main.id, self.company_2.id],
        )
        self.assertNotIn("error", result)
        self.assertEqual(result["kpis"]["total_leads"]["value"], 7)
        self.assertEqual(result["kpis"]["won_revenue"]["value"], 3500.0)
        self.assertIn(self.team_c2.id, [team["id"] for team in result["filter_options"]["teams"]])
        # the company switcher's selection: the main company only
        result = self.data(
            date_from=PERIOD[0], date_to=PERIOD[1], allowed_company_ids=[self.company_main.id]
        )
        self.assertEqual(result["kpis"]["total_leads"]["value"], 5)
        # without a selection: every company of the user, like Odoo's env.companies
        result = self.data(date_from=PERIOD[0], date_to=PERIOD[1])
        self.assertEqual(result["kpis"]["total_leads"]["value"], 7)

    def test_context_like_odoo_routes(self):
        """The route takes the web client's ``context`` (as Odoo's call_kw does): its companies
        apply, checked against the user's."""
        self.authenticate("dash_manager", "dash_manager")
        main = [self.company_main.id]
        both = [self.company_main.id, self.company_2.id]
        result = self.data(
            date_from=PERIOD[0],
            date_to=PERIOD[1],
            context={"allowed_company_ids": main, "lang": "en_US", "tz": "UTC", "uid": 1},
        )
        self.assertNotIn("error", result)
        self.assertEqual(result["kpis"]["total_leads"]["value"], 5)
        self.assertEqual(result["company_ids"], main)
        result = self.data(
            date_from=PERIOD[0], date_to=PERIOD[1], context={"allowed_company_ids": both}
        )
        self.assertEqual(result["kpis"]["total_leads"]["value"], 7)
        self.assertEqual(result["company_ids"], both)
        # a company the user is not in: refused, like Odoo's own routes
        self.authenticate("dash_salesman", "dash_salesman")
        result = self.data(
            date_from=PERIOD[0],
            date_to=PERIOD[1],
            context={"allowed_company_ids": [self.company_2.id]},
        )
        self.assertEqual(result["error"]["code"], "access_denied")

    def test_export_strings_are_strings(self):
        """Names are written as text: a name that looks like a formula stays a string."""
        formula = '=HYPERLINK("http://example.com","click")'
        self.team_a.name = formula
        self.leads["lead_open"].write({"name": "+cmd|' /C calc'!A0"})
        self.env.cr.execute(
            """UPDATE crm_lead SET ai_last_enrichment_date = '2019-03-20',
                      ai_probability_score = 90 WHERE id = %s""",
            (self.leads["lead_open"].id,),
        )
        self.authenticate("dash_manager", "dash_manager")
        response = self.url_open(
            "/crm/dashboard/export?date_from=%s&date_to=%s&company_ids=%s"
            % (PERIOD + (self.company_main.id,))
        )
        self.assertEqual(response.status_code, 200)
        book = zipfile.ZipFile(io.BytesIO(response.content))
        for name in book.namelist():
            if name.startswith("xl/worksheets/"):
                self.assertNotIn(b"<f>", book.read(name), name)
                self.assertNotIn(b"<f ", book.read(name), name)
        sheets = read_xlsx(response.content)
        self.assertIn(formula, [row[0] for row in sheets["Teams"][3:]])
        top = [row for row in sheets["AI insights"] if row and row[0] == "+cmd|' /C calc'!A0"]
        self.assertEqual(len(top), 1)

    def test_bad_inputs(self):
        self.authenticate("dash_manager", "dash_manager")
        cases = [
            ({"date_from": "yesterday", "date_to": PERIOD[1]}, "must be a date"),
            ({"date_from": "2019-13-45", "date_to": PERIOD[1]}, "must be a date"),
            ({"date_from": None, "date_to": PERIOD[1]}, "required"),
            ({"date_from": "2019-04-01", "date_to": "2019-03-01"}, "is after the end date"),
            ({"date_from": "2013-01-01", "date_to": "2019-03-01"}, "longer than 5 years"),
            (
                {"date_from": PERIOD[0], "date_to": PERIOD[1], "team_ids": ["a"]},
                "positive integers",
            ),
            (
                {"date_from": PERIOD[0], "date_to": PERIOD[1], "team_ids": [1.5]},
                "positive integers",
            ),
            ({"date_from": PERIOD[0], "date_to": PERIOD[1], "user_ids": "1"}, "positive integers"),
            (
                {"date_from": PERIOD[0], "date_to": PERIOD[1], "allowed_company_ids": "x"},
                "list of company ids",
            ),
            ({"date_from": PERIOD[0], "date_to": PERIOD[1], "foo": 1}, "Unknown parameter"),
            ({"date_from": PERIOD[0], "date_to": PERIOD[1], "context": "x"}, "context must be"),
            (
                {"date_from": PERIOD[0], "date_to": PERIOD[1], "context": {"tz": "Mars/Base"}},
                "Unknown time zone",
            ),
            (
                {
                    "date_from": PERIOD[0],
                    "date_to": PERIOD[1],
                    "context": {"allowed_company_ids": "1"},
                },
                "list of company ids",
            ),
        ]
        for params, message in cases:
            with self.subTest(params=params):
                result = self.data(**params)
                self.assertEqual(set(result), {"error"})
                self.assertEqual(result["error"]["code"], "bad_request")
                self.assertIn(message, result["error"]["message"])
                self.assertNotIn("Traceback", result["error"]["message"])

    def test_access(self):
        self.authenticate("dash_no_crm", "dash_no_crm")
        result = self.data(date_from=PERIOD[0], date_to=PERIOD[1])
        self.assertEqual(result["error"]["code"], "access_denied")
        response = self.url_open("/crm/dashboard/export?date_from=%s&date_to=%s" % PERIOD)
        self.assertEqual(response.status_code, 403)
        # a salesman cannot ask for a company he is not allowed in
        self.authenticate("dash_salesman", "dash_salesman")
        result = self.data(
            date_from=PERIOD[0], date_to=PERIOD[1], allowed_company_ids=[self.company_2.id]
        )
        self.assertEqual(result["error"]["code"], "access_denied")
        # not logged in: Odoo's session expired error, no data
        self.authenticate(None, None)
        response = self.url_open(
            "/crm/dashboard/export?date_from=%s&date_to=%s" % PERIOD, allow_redirects=False
        )
        self.assertNotEqual(response.status_code, 200)

    def test_call_kw_per_role(self):
        """get_dashboard_data over /web/dataset/call_kw: refused to a portal user and to an
        internal user without CRM rights; the AI figures (read from the narrow AI table) of a
        salesperson count only the leads he may read, a manager's all of them."""
        new_test_user(self.env, "dash_portal_kw", groups="base.group_portal")
        self.env.cr.execute(
            """UPDATE crm_lead SET ai_last_enrichment_date = '2019-03-20',
                      ai_probability_score = 80, ai_enrichment_status = 'completed'
                WHERE id IN %s""",
            (
                tuple(
                    self.leads[key].id
                    for key in ("lead_open", "lead_won", "lead_lost", "lead_unassigned")
                ),
            ),
        )

        def call(login):
            self.authenticate(login, login)
            return self.make_jsonrpc_request(
                "/web/dataset/call_kw",
                {
                    "model": "crm.executive.dashboard",
                    "method": "get_dashboard_data",
                    "args": list(PERIOD),
                    "kwargs": {"context": {"allowed_company_ids": [self.company_main.id]}},
                },
            )

        for login in ("dash_portal_kw", "dash_no_crm"):
            with (
                self.subTest(login=login),
                mute_logger("odoo.http"),
                self.assertRaises(JsonRpcException) as error,
            ):
                call(login)
            self.assertIn("AccessError", str(error.exception))
        # the salesman reads his two leads and the unassigned one, not the manager's
        self.assertEqual(call("dash_salesman")["ai_insights"]["total_ai_scored"], 3)
        self.assertEqual(call("dash_manager")["ai_insights"]["total_ai_scored"], 4)

    def test_export_matches_json(self):
        self.authenticate("dash_manager", "dash_manager")
        companies = [self.company_main.id, self.company_2.id]
        data = self.data(date_from=PERIOD[0], date_to=PERIOD[1], allowed_company_ids=companies)
        response = self.url_open(
            "/crm/dashboard/export?date_from=%s&date_to=%s&company_ids=%s,%s"
            % (PERIOD + tuple(companies))
        )
        self.assertEqual(response.status_code, 200)
        self.assertIn("spreadsheetml", response.headers["Content-Type"])
        self.assertIn(
            "crm_dashboard_2019-03-01_2019-03-31.xlsx", response.headers["Content-Disposition"]
        )
        sheets = read_xlsx(response.content)
        self.assertEqual(
            list(sheets), ["KPIs", "Pipeline", "Teams", "Salespeople", "Forecast", "AI insights"]
        )
        kpi_rows = {row[0]: row for row in sheets["KPIs"][3:]}
        self.assertEqual(set(kpi_rows), set(data["kpis"]))
        for key, kpi in data["kpis"].items():
            self.assertAlmostEqual(kpi_rows[key][1], kpi["value"], 2, key)
            self.assertAlmostEqual(kpi_rows[key][2], kpi["previous"], 2, key)
        self.assertEqual(kpi_rows["won_revenue"][1], 3500.0)
        teams = {row[0]: row for row in sheets["Teams"][3:]}
        for team in data["team_performance"]:
            self.assertEqual(
                teams[team["name"]][1:6],
                [team["leads"], team["opportunities"], team["won"], team["lost"], team["revenue"]],
            )
        stages = [row for row in sheets["Pipeline"][3:]]
        self.assertEqual(
            [(row[0], row[1], row[2]) for row in stages],
            [(s["name"], s["count"], s["expected_revenue"]) for s in data["pipeline"]],
        )
        forecast = sheets["Forecast"][3:]
        self.assertEqual(
            [row[1:5] for row in forecast],
            [
                [m["count"], m["weighted"], m["best_case"], m["worst_case"]]
                for m in data["forecast"]
            ],
        )
        ai = {row[0]: row[1] for row in sheets["AI insights"][3:] if len(row) > 1}
        self.assertEqual(ai["AI-scored leads"], data["ai_insights"]["total_ai_scored"])
        # bad input: a 400 with the message, no traceback
        response = self.url_open("/crm/dashboard/export?date_from=2019-04-01&date_to=2019-03-01")
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"]["code"], "bad_request")
        self.assertIn("is after the end date", response.json()["error"]["message"])
        self.assertNotIn("Traceback", response.text)
