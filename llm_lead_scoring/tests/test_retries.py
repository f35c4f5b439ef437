from odoo.tests import tagged

from .common import LlmLeadScoringCommon, openai_body

MESSAGES = [{"role": "user", "content": "Reply with the single word: OK"}]


@tagged("llm_lead_scoring")
class TestRetries(LlmLeadScoringCommon):
    """Retries are for a busy provider (429/5xx), never for a request that timed out: a
    one-slot server would still be working on the abandoned one."""

    def test_a_timed_out_request_is_not_sent_again(self):
        provider = self._create_provider(timeout=5, max_retries=2)
        self.server.script.append((200, {}, openai_body("OK"), 7))  # answers too late
        result = self.env["llm.service"]._request("test", MESSAGES, provider=provider)
        self.assertEqual(result["error_kind"], "timeout")
        self.assertEqual(len(self.server.requests), 1)
        log = self.env["llm.call.log"].search([("provider_id", "=", provider.id)])
        self.assertEqual((log.attempts, log.error_kind), (1, "timeout"))

    def test_a_server_error_is_retried(self):
        provider = self._create_provider(timeout=5, max_retries=2)
        self.server.script.append((503, {}, {"error": {"message": "busy"}}, 0))
        self.server.script.append((200, {}, openai_body("OK"), 0))
        result = self.env["llm.service"]._request("test", MESSAGES, provider=provider)
        self.assertTrue(result["success"], result["error"])
        self.assertEqual(len(self.server.requests), 2)
