import psycopg2

from odoo.exceptions import AccessError, ValidationError
from odoo.tests import tagged, users
from odoo.tools import mute_logger

from .common import LlmLeadScoringCommon, openai_body


@tagged("llm_lead_scoring")
class TestLlmProvider(LlmLeadScoringCommon):
    def test_defaults_per_type(self):
        provider = self.env["llm.provider"].create({"name": "OpenAI", "provider_type": "openai"})
        self.assertEqual(provider.base_url, "https://api.openai.com/v1")
        self.assertEqual(provider._api_url(), "https://api.openai.com/v1/chat/completions")
        provider.provider_type = "anthropic"
        self.assertEqual(provider._api_url(), "https://api.anthropic.com/v1/messages")
        provider.provider_type = "groq"
        self.assertEqual(provider.base_url, "https://api.groq.com/openai/v1")
        provider.write(
            {"provider_type": "openai_compatible", "base_url": "http://gpu-box:8000/v1/"}
        )
        self.assertEqual(provider._api_url(), "http://gpu-box:8000/v1/chat/completions")

    def test_headers_and_payload_formats(self):
        provider = self._create_provider(provider_type="anthropic", api_key="sk-ant-secret")
        headers = provider._api_headers()
        self.assertEqual(headers["x-api-key"], "sk-ant-secret")
        self.assertIn("anthropic-version", headers)
        payload = provider._request_payload([{"role": "user", "content": "hi"}], "sys")
        self.assertEqual(payload["system"], "sys")
        self.assertEqual(payload["messages"], [{"role": "user", "content": "hi"}])
        provider.write({"provider_type": "openai", "api_key": "sk-openai"})
        self.assertEqual(provider._api_headers()["Authorization"], "Bearer sk-openai")
        payload = provider._request_payload([{"role": "user", "content": "hi"}], "sys")
        self.assertEqual(payload["messages"][0], {"role": "system", "content": "sys"})

    def test_out_of_range_values_are_refused_with_the_limit(self):
        cases = [
            ({"temperature": 2.5}, "between 0 and 2"),
            ({"max_tokens": 50}, "between 100 and 100000"),
            ({"timeout": 400}, "between 5 and 300"),
            ({"max_retries": 11}, "between 0 and 10"),
            ({"base_url": "ftp://x"}, "http:// or https://"),
        ]
        for vals, message in cases:
            with self.subTest(vals=vals), self.assertRaisesRegex(ValidationError, message):
                self._create_provider(**vals)

    def test_one_default_per_company(self):
        first = self._create_provider(name="First")
        second = self._create_provider(name="Second")
        self.assertFalse(first.is_default)
        self.assertTrue(second.is_default)
        first.is_default = True
        self.assertFalse(second.is_default)
        self.assertEqual(self.env["llm.service"]._providers()[:1], first)
        # the database refuses two defaults even when the ORM is bypassed
        with (
            mute_logger("odoo.sql_db"),
            self.assertRaises(psycopg2.errors.UniqueViolation),
            self.cr.savepoint(),
        ):
            self.cr.execute("UPDATE llm_provider SET is_default = TRUE WHERE id = %s", [second.id])

    def test_provider_cache_follows_changes(self):
        self.assertFalse(self.env["llm.service"]._providers()[:1])
        provider = self._create_provider()
        self.assertEqual(self.env["llm.service"]._providers()[:1], provider)
        provider.active = False
        self.assertFalse(self.env["llm.service"]._providers()[:1])

    @users("user_sales_salesman")
    def test_salesman_cannot_read_api_key(self):
        provider = self._create_provider(api_key="sk-very-secret")
        as_salesman = provider.with_user(self.env.user)
        self.assertEqual(as_salesman.name, "Local test server")
        with self.assertRaises(AccessError):
            as_salesman.read(["api_key"])
        with self.assertRaises(AccessError):
            as_salesman.write({"api_key": "stolen"})
        self.assertNotIn("api_key", as_salesman.fields_get())

    @users("user_sales_manager")
    def test_manager_manages_providers_and_key(self):
        provider = self.env["llm.provider"].create(
            {"name": "Mine", "provider_type": "openai", "api_key": "sk-mine"}
        )
        self.assertEqual(provider.api_key, "sk-mine")
        # never offered by the export dialog (it lists fields_get's exportable fields)
        self.assertFalse(provider.fields_get(["api_key"])["api_key"]["exportable"])

    def test_test_connection_notifies(self):
        provider = self._create_provider()
        self.server.default = (200, {}, openai_body("OK"), 0)
        action = provider.action_test_connection()
        self.assertEqual(action["params"]["type"], "success")
        self.server.default = (401, {}, {"error": {"message": "bad key"}}, 0)
        action = provider.action_test_connection()
        self.assertEqual(action["params"]["type"], "danger")
        self.assertIn("API key", action["params"]["message"])

    def test_health_check(self):
        service = self.env["llm.service"]
        self.assertEqual(service.health_check()["status"], "critical")
        primary = self._create_provider(name="Primary")
        self.server.default = (200, {}, openai_body("OK"), 0)
        health = service.health_check()
        self.assertEqual((health["status"], health["provider"]), ("healthy", "Primary"))
        # primary down (connection refused), fallback answers -> degraded
        primary.base_url = "http://127.0.0.1:9/v1"
        self._create_provider(name="Fallback", is_default=False, sequence=50)
        health = service.health_check()
        self.assertEqual((health["status"], health["provider"]), ("degraded", "Fallback"))
        self.server.default = (503, {}, {"error": "down"}, 0)
        self.assertEqual(service.health_check()["status"], "critical")

    def test_usage_and_cost(self):
        provider = self._create_provider(price_input=1000.0, price_output=3500.0)
        self.server.default = (200, {}, openai_body("OK", 600, 400), 0)
        self.env["llm.service"]._request("test", [{"role": "user", "content": "x"}])
        provider.invalidate_recordset()
        self.assertEqual(
            (provider.request_count, provider.tokens_in, provider.tokens_out), (1, 600, 400)
        )
        # 600 x 1000 / 1M + 400 x 3500 / 1M
        self.assertAlmostEqual(provider.total_cost, 2.0)
        self.assertEqual(provider.success_rate, 100.0)
        self.assertTrue(provider.last_used)


@tagged("llm_lead_scoring")
class TestLlmSettings(LlmLeadScoringCommon):
    def test_weights_must_sum_to_100(self):
        with self.assertRaisesRegex(ValidationError, "sum to 100"):
            self.env["res.config.settings"].create(
                {
                    "llm_weight_completeness": 50,
                    "llm_weight_clarity": 40,
                    "llm_weight_engagement": 30,
                }
            )

    def test_saving_settings_clears_the_cached_config(self):
        service = self.env["llm.service"]
        self.assertEqual(service._get_config()["weight_clarity"], 40)
        self.env["res.config.settings"].create(
            {
                "llm_weight_completeness": 20,
                "llm_weight_clarity": 60,
                "llm_weight_engagement": 20,
            }
        ).execute()
        self.assertEqual(service._get_config()["weight_clarity"], 60)
        lead = self._full_lead()
        outcome = service._analyze(lead)
        self.assertEqual(outcome["weights"], {"completeness": 20, "clarity": 60, "engagement": 20})
