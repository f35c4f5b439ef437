import threading
import uuid

from odoo import SUPERUSER_ID, api
from odoo.tests import tagged

from ..lib import answers
from ..models.llm_service import PURPOSE_OPTIONS
from .common import LlmLeadScoringCommon, analysis_json, openai_body

MESSAGES = [{"role": "user", "content": "Say OK"}]


@tagged("llm_lead_scoring")
class TestStructuredOutput(LlmLeadScoringCommon):
    def _body(self, provider_type, structured_output=None, purpose="scoring", schema=True):
        provider = self._create_provider(
            provider_type=provider_type, base_url=self.server.base_url, api_key="k"
        )
        if structured_output:
            provider.structured_output = structured_output
        options = dict(PURPOSE_OPTIONS[purpose], schema=answers.ANALYSIS_SCHEMA if schema else None)
        return provider._request_payload(MESSAGES, "sys", options)

    def test_each_provider_type_asks_for_structure_its_own_way(self):
        schema = answers.ANALYSIS_SCHEMA
        openai = self._body("openai")
        self.assertEqual(openai["response_format"]["type"], "json_schema")
        self.assertEqual(openai["response_format"]["json_schema"]["schema"], schema)
        self.assertEqual(self._body("groq")["response_format"], {"type": "json_object"})
        anthropic = self._body("anthropic")
        self.assertEqual(anthropic["tools"][0]["input_schema"], schema)
        self.assertEqual(anthropic["tool_choice"], {"type": "tool", "name": "answer"})
        # local servers enforce the schema with a grammar: lengths are bounded there, so a
        # small model cannot ramble inside a string until the timeout
        bounded = answers.bounded_schema(schema)
        self.assertEqual(bounded["properties"]["summary"]["maxLength"], answers.BOUNDED_TEXT)
        llama = self._body("openai_compatible")  # llama-cpp-python by default
        self.assertEqual(llama["response_format"], {"type": "json_object", "schema": bounded})
        self.assertEqual(self._body("openai_compatible", "ollama")["format"], bounded)
        self.assertEqual(self._body("openai_compatible", "vllm")["guided_json"], bounded)
        none = self._body("openai_compatible", "none")
        self.assertFalse({"response_format", "format", "guided_json"} & set(none))

    def test_max_tokens_and_stop_per_purpose(self):
        tone = self._body("openai", purpose="tone", schema=False)
        self.assertEqual((tone["max_tokens"], tone["stop"]), (8, ["\n"]))
        self.assertNotIn("response_format", tone)
        anthropic = self._body("anthropic", purpose="test", schema=False)
        self.assertEqual(anthropic["stop_sequences"], ["\n"])
        scoring = self._body("openai", purpose="scoring")
        self.assertEqual(scoring["max_tokens"], 600)  # under the provider's 800

    def test_scoring_request_carries_the_schema_and_a_truncated_answer_says_so(self):
        self._create_provider()
        body = openai_body('{"clarity": 80, "summ')
        body["choices"][0]["finish_reason"] = "length"
        self.server.default = (200, {}, body, 0)
        lead = self._full_lead()
        self.env["crm.lead"]._ai_enrich(lead)
        sent = self.server.requests[-1]["json"]
        self.assertEqual(
            sent["response_format"]["schema"], answers.bounded_schema(answers.ANALYSIS_SCHEMA)
        )
        log = self.env["llm.call.log"].search([("res_id", "=", lead.id)])
        self.assertEqual(log.outcome, "invalid")
        self.assertIn("truncated", log.error)
        # a manager reads what the model wrote before it was cut
        self.assertEqual(log.sudo().error_detail, '{"clarity": 80, "summ')
        # the salesperson reads plain words, not the validator's
        self.assertEqual(lead.ai_analysis_method, "fallback")
        self.assertEqual(lead.ai_analysis_summary, "Scored by rules: the AI answer was unusable.")

    def test_an_analysis_copied_from_the_prompt_is_rejected(self):
        self._create_provider()
        self.server.default = (
            200,
            {},
            openai_body(analysis_json(summary=":{", next_action="<one sentence>")),
            0,
        )
        lead = self._full_lead()
        self.env["crm.lead"]._ai_enrich(lead)
        self.assertEqual(lead.ai_analysis_method, "fallback")
        self.assertNotEqual(lead.ai_next_action, "<one sentence>")

    def test_an_analysis_that_repeats_the_lead_data_is_rejected(self):
        """What Gemma 3 270M answered: a name of the lead data as summary, the stage as next
        action. Not an assessment: rules score the lead and say so."""
        self._create_provider()
        lead = self._full_lead()
        self.server.default = (
            200,
            {},
            openai_body(analysis_json(summary=lead.name, next_action=lead.stage_id.name)),
            0,
        )
        self.env["crm.lead"]._ai_enrich(lead)
        self.assertEqual(lead.ai_analysis_method, "fallback")
        log = self.env["llm.call.log"].search([("res_id", "=", lead.id)])
        self.assertEqual(log.outcome, "invalid")
        self.assertIn("copies the lead's data", log.error)
        self.assertIn(lead.name, log.sudo().error_detail)


@tagged("llm_lead_scoring")
class TestConnectionCheck(LlmLeadScoringCommon):
    def test_connection_test_checks_the_answer_itself(self):
        provider = self._create_provider()
        cases = [
            ("OK", "success", None),
            ("", "danger", "chat template"),
            ("Reply with the single word: OK", "danger", "repeated the question"),
            ("Sure! Here is a long story about " + "x" * 80, "danger", "did not follow"),
        ]
        for answer, kind, words in cases:
            with self.subTest(answer=answer[:20]):
                self.server.default = (200, {}, openai_body(answer or " "), 0)
                params = provider.action_test_connection()["params"]
                self.assertEqual(params["type"], kind)
                if words:
                    self.assertIn(words, params["message"])

    def test_measure_times_a_real_analysis_and_sets_what_fits(self):
        provider = self._create_provider(timeout=120, concurrency=4)
        self.server.default = (200, {}, openai_body(analysis_json(), 300, 120), 0.2)
        params = provider.action_measure()["params"]
        self.assertEqual(params["type"], "success")
        self.assertIn("tokens/s", params["message"])
        sent = self.server.requests[-1]["json"]
        self.assertEqual(
            sent["response_format"]["schema"], answers.bounded_schema(answers.ANALYSIS_SCHEMA)
        )
        self.assertEqual((provider.timeout, provider.concurrency, provider.max_retries), (10, 1, 1))
        log = self.env["llm.call.log"].search([("provider_id", "=", provider.id)])
        self.assertEqual((len(log), log.purpose), (1, "test"))


@tagged("llm_lead_scoring", "post_install", "-at_install")
class TestUsageSurvivesRollback(LlmLeadScoringCommon):
    def test_a_call_paid_for_stays_in_the_log_when_the_caller_rolls_back(self):
        registry = self.registry
        marker = "rollback-%s" % uuid.uuid4().hex[:8]
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            provider = env["llm.provider"].create(
                {
                    "name": marker,
                    "company_id": False,
                    "provider_type": "openai_compatible",
                    "base_url": self.server.base_url,
                    "is_default": True,
                    "max_retries": 0,
                    "timeout": 10,
                }
            )

        def cleanup():
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                env["llm.call.log"].search([("provider_id", "=", provider.id)]).unlink()
                env["llm.provider"].browse(provider.id).unlink()

        self.addCleanup(cleanup)
        self.server.default = (200, {}, openai_body("OK"), 0)
        errors = []

        def caller():
            try:
                cr = registry.cursor()
                try:
                    env = api.Environment(cr, SUPERUSER_ID, {})
                    env["llm.service"]._request(
                        "test", MESSAGES, provider=env["llm.provider"].browse(provider.id)
                    )
                    cr.rollback()  # the caller's transaction fails after the call
                finally:
                    cr.close()
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        thread = threading.Thread(target=caller)
        thread.start()
        thread.join(timeout=60)
        self.assertFalse(errors)
        self.assertEqual(len(self.server.requests), 1)
        with registry.cursor() as cr:
            cr.execute("SELECT count(*) FROM llm_call_log WHERE provider_id = %s", [provider.id])
            self.assertEqual(cr.fetchone()[0], 1)
