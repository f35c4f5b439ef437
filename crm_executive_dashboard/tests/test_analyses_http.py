import json

from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tests.common import JsonRpcException
from odoo.tools import mute_logger

from .analyses_common import AnalysesCommon
from .common import PERIOD
from .test_controller import read_xlsx


@tagged("post_install", "-at_install", "crm_executive_dashboard")
class TestAnalysesHttp(HttpCase, AnalysesCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_portal = new_test_user(cls.env, "dash_portal", groups="base.group_portal")
        cls.user_leader = new_test_user(
            cls.env, "dash_leader_an", groups="sales_team.group_sale_salesman", tz="UTC"
        )
        cls.team_a.user_id = cls.user_leader

    def url(self, name, **params):
        query = "&".join("%s=%s" % item for item in params.items())
        return "/crm/dashboard/analysis/%s?%s" % (name, query)

    def test_route_json_and_errors(self):
        self.authenticate("dash_manager", "dash_manager")
        companies = "%s,%s" % (self.company_main.id, self.company_2.id)
        for name in ("funnel", "bottlenecks", "winloss", "roi"):
            response = self.url_open(
                self.url(name, date_from=PERIOD[0], date_to=PERIOD[1], company_ids=companies)
            )
            self.assertEqual(response.status_code, 200, name)
            data = response.json()
            self.assertEqual(data["name"], name)
            expected = self.analysis(
                self.user_manager, [self.company_main.id, self.company_2.id], name
            )
            expected = json.loads(json.dumps(expected))
            if name == "bottlenecks":
                # the "over the norm" domains hold the time of the call: compare the figures
                key = ("stage_id", "median_days", "p75_days", "p90_days", "deals", "over")
                data = [[row[k] for k in key] for row in data["rows"]]
                expected = [[row[k] for k in key] for row in expected["rows"]]
            self.assertEqual(data, expected)
        for params, message in (
            ({"date_from": "yesterday", "date_to": PERIOD[1]}, "must be a date"),
            ({"date_from": PERIOD[1], "date_to": PERIOD[0]}, "is after the end date"),
            ({"date_from": PERIOD[0], "date_to": PERIOD[1], "team_ids": "a"}, "positive integers"),
            ({"date_from": PERIOD[0], "date_to": PERIOD[1], "foo": "1"}, "Unknown parameter"),
            ({"date_from": PERIOD[0], "date_to": PERIOD[1], "company_ids": "x"}, "company ids"),
        ):
            with self.subTest(params=params):
                response = self.url_open(self.url("funnel", **params))
                self.assertEqual(response.status_code, 400)
                self.assertEqual(response.json()["error"]["code"], "bad_request")
                self.assertIn(message, response.json()["error"]["message"])
                self.assertNotIn("Traceback", response.text)
        response = self.url_open(self.url("churn", date_from=PERIOD[0], date_to=PERIOD[1]))
        self.assertEqual(response.status_code, 400)
        self.assertIn("Unknown analysis", response.json()["error"]["message"])
        # a company the user is not in: 403
        self.authenticate("dash_salesman", "dash_salesman")
        response = self.url_open(
            self.url("roi", date_from=PERIOD[0], date_to=PERIOD[1], company_ids=self.company_2.id)
        )
        self.assertEqual(response.status_code, 403)

    def test_export(self):
        self.authenticate("dash_manager", "dash_manager")
        companies = [self.company_main.id, self.company_2.id]
        for name, sheet, check in (
            ("funnel", "Funnel", lambda data: [r["reached"] for r in data["rows"]]),
            ("roi", "ROI", lambda data: [r["leads"] for r in data["rows"]]),
            ("winloss", "Win rate", lambda data: [r["deals"] for r in data["rows"]]),
            ("bottlenecks", "Stage norms", lambda data: [r["deals"] for r in data["rows"]]),
        ):
            with self.subTest(analysis=name):
                response = self.url_open(
                    self.url(
                        name,
                        date_from=PERIOD[0],
                        date_to=PERIOD[1],
                        company_ids="%s,%s" % tuple(companies),
                    ).replace("?", "/export?")
                )
                self.assertEqual(response.status_code, 200)
                self.assertIn(
                    "crm_%s_2019-03-01_2019-03-31.xlsx" % name,
                    response.headers["Content-Disposition"],
                )
                sheets = read_xlsx(response.content)
                data = self.analysis(self.user_manager, companies, name)
                column = 2 if name in ("roi", "winloss") else 1
                if name == "winloss":
                    column = 4
                if name == "bottlenecks":
                    column = 4
                self.assertEqual([row[column] for row in sheets[sheet][3:]], check(data))
                self.assertIn("Definitions", sheets)
        response = self.url_open(
            "/crm/dashboard/analysis/roi/export?date_from=2019-04-01&date_to=2019-03-01"
        )
        self.assertEqual(response.status_code, 400)

    def _call(self, login, method="get_analysis", args=None):
        self.authenticate(login, login)
        return self.make_jsonrpc_request(
            "/web/dataset/call_kw",
            {
                "model": "crm.executive.dashboard",
                "method": method,
                "args": args or ["funnel", PERIOD[0], PERIOD[1]],
                "kwargs": {"context": {"allowed_company_ids": [self.company_main.id]}},
            },
        )

    def test_access_per_role(self):
        """get_analysis over call_kw: refused to portal users and to internal users without
        CRM rights; a salesperson and a team leader see their own leads (and the unassigned
        ones), a manager all of them."""
        for login in ("dash_portal", "dash_no_crm"):
            with (
                self.subTest(login=login),
                mute_logger("odoo.http"),
                self.assertRaises(JsonRpcException) as error,
            ):
                self._call(login)
            self.assertIn("AccessError", str(error.exception))
        totals = {
            login: self._call(login)["total"]
            for login in ("dash_salesman", "dash_leader_an", "dash_manager")
        }
        own = self.analysis(self.user_salesman, [self.company_main.id], "funnel")["total"]
        self.assertEqual(totals["dash_salesman"], own)
        # lead_open, lead_won, h1, h2, h5 (his) and lead_unassigned
        self.assertEqual(totals["dash_salesman"], 6)
        self.assertEqual(totals["dash_leader_an"], 1)  # only the unassigned lead
        self.assertEqual(totals["dash_manager"], 10)
        # the costs are read-only for a salesperson
        self.authenticate("dash_salesman", "dash_salesman")
        with mute_logger("odoo.http"), self.assertRaises(JsonRpcException) as error:
            self.make_jsonrpc_request(
                "/web/dataset/call_kw",
                {
                    "model": "crm.campaign.cost",
                    "method": "create",
                    "args": [
                        {
                            "source_id": self.source_web.id,
                            "date_from": "2019-01-01",
                            "date_to": "2019-01-31",
                            "amount": 1,
                        }
                    ],
                    "kwargs": {},
                },
            )
        self.assertIn("AccessError", str(error.exception))
