import os
import shutil
import tempfile
from unittest.mock import patch

from freezegun import freeze_time

from odoo import _
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.llm_lead_scoring.tests.common import ScriptedLLMServer, call_kw, openai_body

from .common import DashboardCommon

DIGEST_LOG = "crm.dashboard.digest.log"
SUBSCRIPTION = "crm.dashboard.digest.subscription"
REFUSALS = ("odoo.exceptions.AccessError", "odoo.exceptions.UserError")


class DigestCommon(DashboardCommon):
    """The dashboard's fixture (March 2019), a subscription per user, a local LLM server."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["llm.provider"].sudo().search([]).write({"active": False})
        cls.env.registry.clear_cache()
        cls.Subscription = cls.env[SUBSCRIPTION]
        cls.sub_salesman = cls.Subscription.create(
            {"user_id": cls.user_salesman.id, "period": "monthly"}
        )
        cls.sub_manager = cls.Subscription.create(
            {"user_id": cls.user_manager.id, "period": "monthly"}
        )
        cls.server = ScriptedLLMServer().start()
        cls.addClassCleanup(cls.server.stop)

    def setUp(self):
        super().setUp()
        self.server.script.clear()
        self.server.requests.clear()

    def _provider(self):
        provider = (
            self.env["llm.provider"]
            .sudo()
            .create(
                {
                    "name": "Local test server",
                    "provider_type": "openai_compatible",
                    "base_url": self.server.base_url,
                    "model_name": "test-model",
                    "is_default": True,
                    "max_retries": 0,
                    "timeout": 5,
                }
            )
        )
        self.env.registry.clear_cache()
        return provider

    def _mails(self, user):
        return (
            self.env["mail.mail"]
            .sudo()
            .search(
                [("recipient_ids", "in", user.partner_id.ids), ("subject", "like", "CRM digest")]
            )
        )

    def _logs(self, subscription):
        return self.env[DIGEST_LOG].sudo().search([("subscription_id", "=", subscription.id)])

    def _kpi(self, log, key):
        """A figure of the digest sent (read back from the values the PDF was rendered from)."""
        env = log._subscriber_env(log.user_id, log.company_id)
        user_ids = (
            None
            if log.user_id.has_group("sales_team.group_sale_salesman_all_leads")
            else [log.user_id.id]
        )
        values = env["crm.dashboard.digest"]._digest_values(
            log.date_from, log.date_to, None, user_ids
        )
        return next(k for k in values["kpis"] if k["key"] == key)


@tagged("post_install", "-at_install", "crm_executive_dashboard")
class TestDigestSending(DigestCommon):
    def test_cron_once_per_period_and_subscriber(self):
        """The cron run twice in April sends one digest of March per subscriber; in May, the
        digest of April."""
        with freeze_time("2019-04-02 08:00:00"):
            self.Subscription._cron_send_digests()
            self.Subscription._cron_send_digests()
        logs = self._logs(self.sub_salesman)
        self.assertEqual(len(logs), 1)
        self.assertEqual(
            (str(logs.date_from), str(logs.date_to), logs.state),
            ("2019-03-01", "2019-03-31", "sent"),
        )
        self.assertEqual(len(self._mails(self.user_salesman)), 1)
        self.assertEqual(len(self._mails(self.user_manager)), 1)
        mail = self._mails(self.user_salesman)
        self.assertEqual(mail.attachment_ids, logs.attachment_id)
        self.assertIn("2019-03-01", mail.subject)
        with freeze_time("2019-05-01 08:00:00"):
            self.Subscription._cron_send_digests()
        self.assertEqual(len(self._mails(self.user_salesman)), 2)
        self.assertEqual(
            sorted(str(d) for d in self._logs(self.sub_salesman).mapped("date_from")),
            ["2019-03-01", "2019-04-01"],
        )

    def test_crash_midway_resumes_without_repeating(self):
        """The run crashes at the manager's digest (the process dies: nothing is caught); the
        next run sends his digest, and not again the digests sent before the crash."""
        original = type(self.env[DIGEST_LOG])._render_and_mail
        crashed = []

        def crash_once_for_manager(log, user, company, team_ids):
            if user == self.user_manager and not crashed:
                crashed.append(user)
                raise MemoryError("killed")
            return original(log, user, company, team_ids)

        with (
            freeze_time("2019-04-02 08:00:00"),
            patch.object(type(self.env[DIGEST_LOG]), "_render_and_mail", crash_once_for_manager),
        ):
            with self.assertRaises(MemoryError):
                self.Subscription._cron_send_digests()
            sent_before = self._mails(self.user_salesman) | self._mails(self.user_manager)
            self.assertFalse(self._mails(self.user_manager))
            self.Subscription._cron_send_digests()
            self.Subscription._cron_send_digests()
        self.assertEqual(len(self._mails(self.user_manager)), 1)
        self.assertEqual(len(self._mails(self.user_salesman)), 1)
        self.assertEqual(self._logs(self.sub_manager).state, "sent")
        self.assertLessEqual(sent_before, self._mails(self.user_salesman))

    def test_render_failure_is_logged_and_retried(self):
        def broken(*args, **kwargs):
            raise UserError(_("Wkhtmltopdf failed (error code: -11)."))

        with freeze_time("2019-04-02 08:00:00"):
            with (
                patch.object(type(self.env["ir.actions.report"]), "_render_qweb_pdf", broken),
                self.assertLogs(
                    "odoo.addons.crm_executive_dashboard.models.crm_dashboard_digest", "WARNING"
                ),
            ):
                self.Subscription._cron_send_digests()
            self.assertEqual(self._logs(self.sub_salesman).state, "failed")
            self.assertIn("error code", self._logs(self.sub_salesman).error)
            self.assertFalse(self._mails(self.user_salesman))
            self.Subscription._cron_send_digests()
        self.assertEqual(self._logs(self.sub_salesman).state, "sent")
        self.assertEqual(len(self._mails(self.user_salesman)), 1)

    def test_weekly_period(self):
        self.sub_salesman.period = "weekly"
        with freeze_time("2019-03-13 08:00:00"):  # a Wednesday: the week of March 4 to 10
            self.Subscription._cron_send_digests()
        log = self._logs(self.sub_salesman)
        self.assertEqual((str(log.date_from), str(log.date_to)), ("2019-03-04", "2019-03-10"))
        # compared with the week before (the same number of days)
        self.assertEqual(self._kpi(log, "won_opportunities")["value"], "1")

    def test_salesperson_digest_holds_his_leads_only(self):
        """Rendered with the subscriber's rights: the salesman's figures are those of his own
        leads (lead_open, lead_won), not those of the manager's or another salesman's."""
        with freeze_time("2019-04-02 08:00:00"):
            self.Subscription._cron_send_digests()
            salesman = self._logs(self.sub_salesman)
            manager = self._logs(self.sub_manager)
            self.assertEqual(self._kpi(salesman, "total_leads")["value"], "2")
            self.assertEqual(self._kpi(salesman, "lost_opportunities")["value"], "0")
            self.assertEqual(self._kpi(salesman, "won_revenue")["value"], "$ 2,000")
            # lead_open only: lead_other (700) is another salesman's
            self.assertEqual(self._kpi(salesman, "pipeline_value")["value"], "$ 1,000")
            # the manager sees the other salesman's and the unassigned leads, in both companies
            self.assertEqual(self._kpi(manager, "lost_opportunities")["value"], "1")
            self.assertNotEqual(self._kpi(manager, "total_leads")["value"], "2")
        html = salesman.attachment_id.raw.decode()
        self.assertIn("Leads created", html)
        self.assertIn("$ 2,000", html)

    def test_digest_content(self):
        with freeze_time("2019-04-02 08:00:00"):
            self.Subscription._cron_send_digests()
        html = self._logs(self.sub_manager).attachment_id.raw.decode()
        for section in ("Key figures", "Biggest movements", "Top risks", "Commentary"):
            self.assertIn(section, html)
        funnel = hasattr(self.env["crm.executive.dashboard"], "get_analysis")
        self.assertEqual("Conversion funnel" in html, funnel)


@tagged("post_install", "-at_install", "crm_executive_dashboard")
class TestDigestCommentary(DigestCommon):
    def _send(self):
        with freeze_time("2019-04-02 08:00:00"):
            self.sub_manager._send_digest(*self._period())
        return self._logs(self.sub_manager)

    def _period(self):
        from datetime import date

        return date(2019, 3, 1), date(2019, 3, 31)

    def test_rules_without_provider(self):
        log = self._send()
        self.assertEqual(log.commentary_source, "rules")
        self.assertIn("leads were created", log.commentary)
        self.assertFalse(self.server.requests)

    def test_llm_with_the_reports_numbers(self):
        self._provider()
        values = self._kpi_values()
        text = "Won revenue reached %s while the win rate stood at %s." % (
            values["won_revenue"]["value"],
            values["win_rate"]["value"],
        )
        self.server.default = (200, {}, openai_body(text), 0)
        log = self._send()
        self.assertEqual(log.commentary_source, "llm")
        self.assertEqual(log.commentary, text)
        prompt = self.server.requests[0]["json"]["messages"][-1]["content"]
        self.assertIn("Won revenue", prompt)
        call = self.env["llm.call.log"].sudo().search([], order="id desc", limit=1)
        self.assertEqual(call.purpose, "digest")

    def test_invented_number_falls_back_to_rules(self):
        self._provider()
        self.server.default = (
            200,
            {},
            openai_body("Revenue grew by 37.5 % thanks to 12,345 new leads this month."),
            0,
        )
        log = self._send()
        self.assertEqual(len(self.server.requests), 1)
        self.assertEqual(log.commentary_source, "rules")
        self.assertNotIn("12,345", log.commentary)
        call = self.env["llm.call.log"].sudo().search([], order="id desc", limit=1)
        self.assertEqual(call.outcome, "invalid")

    def test_purpose_switched_off_gives_rules(self):
        self._provider()
        settings = self.env["res.config.settings"].create({})
        settings.llm_purpose_digest = False
        settings.execute()
        self.env["res.config.settings"].create({}).execute()  # saved twice: still off
        self.assertFalse(self.env.company.llm_purpose_digest)
        log = self._send()
        self.assertEqual(log.commentary_source, "rules")
        self.assertFalse(self.server.requests)

    def _kpi_values(self):
        env = self.env[DIGEST_LOG]._subscriber_env(self.user_manager, self.company_main)
        values = env["crm.dashboard.digest"]._digest_values(*self._period())
        return {k["key"]: k for k in values["kpis"]}


@tagged("post_install", "-at_install", "crm_executive_dashboard")
class TestDigestRights(DigestCommon):
    def test_salesman_cannot_subscribe_others(self):
        Subscription = self.Subscription.with_user(self.user_salesman)
        with self.assertRaises(AccessError):
            Subscription.create({"user_id": self.user_other.id, "period": "weekly"})
        own = Subscription.create({"user_id": self.user_salesman.id, "period": "weekly"})
        self.assertEqual(own.user_id, self.user_salesman)
        self.assertEqual(Subscription.search([]), self.sub_salesman | own)
        with self.assertRaises(AccessError):
            self.sub_manager.with_user(self.user_salesman).read(["period"])
        with self.assertRaises(AccessError):
            self.sub_salesman.with_user(self.user_salesman).user_id = self.user_other

    def test_manager_subscribes_a_salesman(self):
        sub = self.Subscription.with_user(self.user_manager).create(
            {"user_id": self.user_other.id, "period": "weekly"}
        )
        self.assertEqual(sub.user_id, self.user_other)

    def test_no_subscription_without_crm(self):
        with self.assertRaises(AccessError):
            self.Subscription.with_user(self.user_no_crm).search([])
        with self.assertRaises(ValidationError):
            self.Subscription.create({"user_id": self.user_no_crm.id})

    def test_logs_own_only(self):
        with freeze_time("2019-04-02 08:00:00"):
            self.Subscription._cron_send_digests()
        Log = self.env[DIGEST_LOG]
        self.assertEqual(Log.with_user(self.user_salesman).search([]).user_id, self.user_salesman)
        self.assertEqual(
            Log.with_user(self.user_manager).search([]).user_id,
            self.user_salesman | self.user_manager,
        )
        with self.assertRaises(AccessError):
            Log.with_user(self.user_salesman).search([]).unlink()


@tagged("post_install", "-at_install", "crm_executive_dashboard")
class TestDigestHttp(HttpCase, DigestCommon):
    """``action_send_sample`` over /web/dataset/call_kw, per role; the PDF really rendered."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_portal = new_test_user(
            cls.env, "dash_portal", groups="base.group_portal", name="Dash Portal"
        )
        cls.user_leader = new_test_user(
            cls.env,
            "dash_leader",
            groups="sales_team.group_sale_salesman",
            name="Dash Leader",
            tz="UTC",
            company_id=cls.company_main.id,
        )
        cls.team_a.user_id = cls.user_leader

    def _rpc(self, login, model, method, args, kwargs=None):
        self.authenticate(login, login)
        return call_kw(self, model, method, args, kwargs).json()

    def test_send_sample_per_role(self):
        for login in ("dash_portal", "dash_no_crm"):
            answer = self._rpc(login, SUBSCRIPTION, "action_send_sample", [])
            self.assertIn("error", answer, login)
            self.assertIn(answer["error"]["data"]["name"], REFUSALS, login)
        for login, user in (
            ("dash_salesman", self.user_salesman),
            ("dash_leader", self.user_leader),
            ("dash_manager", self.user_manager),
        ):
            # queued for the digest cron: the click does not wait for the PDF; a second
            # click while it waits queues nothing more
            for _click in range(2):
                answer = self._rpc(login, SUBSCRIPTION, "action_send_sample", [])
                self.assertNotIn("error", answer, login)
                self.assertIn("is being prepared", answer["result"]["message"])
            log = self.env[DIGEST_LOG].sudo().search([("user_id", "=", user.id)])
            self.assertEqual((len(log), log.is_sample, log.state), (1, True, "pending"), login)
            self.assertFalse(self._mails(user), login)
        self.env[SUBSCRIPTION]._cron_send_digests()
        for user in (self.user_salesman, self.user_leader, self.user_manager):
            log = self.env[DIGEST_LOG].sudo().search([("user_id", "=", user.id)])
            samples = log.filtered("is_sample")
            self.assertEqual((len(samples), samples.state), (1, "sent"), user.login)
            # the sample is not the period's digest: the cron still sends that one too
            self.assertFalse(samples.subscription_id)
            self.assertEqual(len(self._mails(user)), len(log), user.login)
        # a new click after the sample was sent queues a new one
        self._rpc("dash_manager", SUBSCRIPTION, "action_send_sample", [])
        samples = (
            self.env[DIGEST_LOG]
            .sudo()
            .search([("user_id", "=", self.user_manager.id), ("is_sample", "=", True)])
        )
        self.assertEqual(sorted(samples.mapped("state")), ["pending", "sent"])

    def test_portal_and_others_cannot_read_or_subscribe(self):
        for login in ("dash_portal", "dash_no_crm"):
            answer = self._rpc(login, SUBSCRIPTION, "search_read", [[]], {"fields": ["user_id"]})
            self.assertIn("error", answer, login)
        answer = self._rpc(
            "dash_salesman",
            SUBSCRIPTION,
            "create",
            [{"user_id": self.user_other.id, "period": "weekly"}],
        )
        self.assertIn("error", answer)
        answer = self._rpc("dash_leader", SUBSCRIPTION, "read", [self.sub_salesman.ids, ["period"]])
        self.assertIn("error", answer)
        # his own subscription cannot be handed over to someone else
        answer = self._rpc(
            "dash_salesman",
            SUBSCRIPTION,
            "write",
            [self.sub_salesman.ids, {"user_id": self.user_other.id}],
        )
        self.assertIn(answer["error"]["data"]["name"], REFUSALS)
        self.assertEqual(self.sub_salesman.user_id, self.user_salesman)
        self.env[DIGEST_LOG].sudo().create(
            {
                "user_id": self.user_manager.id,
                "company_id": self.company_main.id,
                "period": "monthly",
                "date_from": "2019-03-01",
                "date_to": "2019-03-31",
            }
        )
        answer = self._rpc(
            "dash_salesman", DIGEST_LOG, "search_read", [[]], {"fields": ["user_id"]}
        )
        self.assertEqual(answer["result"], [])
        answer = self._rpc("dash_manager", DIGEST_LOG, "search_read", [[]], {"fields": ["user_id"]})
        self.assertEqual(len(answer["result"]), 1)
        answer = self._rpc(
            "dash_manager", SUBSCRIPTION, "search_read", [[]], {"fields": ["user_id"]}
        )
        self.assertEqual(len(answer["result"]), 2)

    def test_renders_a_pdf(self):
        """wkhtmltopdf really runs (tests otherwise get HTML), without a WARNING in the log."""
        log = (
            self.env[DIGEST_LOG]
            .sudo()
            .create(
                {
                    "subscription_id": self.sub_manager.id,
                    "user_id": self.user_manager.id,
                    "company_id": self.company_main.id,
                    "period": "monthly",
                    "date_from": "2019-03-01",
                    "date_to": "2019-03-31",
                }
            )
        )
        log = log.with_context(force_report_rendering=True)
        # Qt warns on stderr (a WARNING of Odoo's) when the process has no runtime directory:
        # a service's environment has one (see readme/CONFIGURE.md), a test run may not
        runtime = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, runtime, ignore_errors=True)
        with (
            patch.dict(os.environ, {"XDG_RUNTIME_DIR": runtime}),
            self.assertNoLogs("odoo.addons.base.models.ir_actions_report", "WARNING"),
        ):
            self.assertTrue(log._render_and_mail(self.user_manager, self.company_main, []))
        self.assertEqual(log.attachment_id.mimetype, "application/pdf")
        self.assertEqual(log.attachment_id.raw[:4], b"%PDF")
        self.assertTrue(log.attachment_id.name.endswith(".pdf"))
