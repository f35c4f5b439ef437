"""Voice input of the copilot: speech to text through the AI gateway."""

import base64
import io
import math
import struct
import wave
from email import policy
from email.parser import BytesParser

from odoo.exceptions import AccessError, UserError
from odoo.tests import HttpCase, tagged

from odoo.addons.llm_lead_scoring.models.llm_service import TRANSCRIPTION_MAX_BYTES
from odoo.addons.llm_lead_scoring.tests.common import LlmLeadScoringCommon
from odoo.addons.mail.tests.common import mail_new_test_user

from .common import call_kw

SECRET = "sk-voice-SECRET-42"
QUESTION = "How many deals did Europe win last quarter?"


def wav_bytes(seconds=0.25, rate=8000):
    """A real, small WAV file: a 440 Hz tone, mono, 16 bits."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
        for i in range(int(seconds * rate))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return buffer.getvalue()


def multipart_fields(request):
    """{name: (filename, content type, bytes)} of a recorded multipart/form-data request."""
    content_type = request["headers"]["Content-Type"]
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + request["body"]
    )
    return {
        part.get_param("name", header="content-disposition"): (
            part.get_filename(),
            part.get_content_type() if part.get("Content-Type") else None,
            part.get_payload(decode=True),
        )
        for part in message.iter_parts()
    }


class CopilotVoiceCommon(LlmLeadScoringCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.wav = wav_bytes()
        cls.wav_b64 = base64.b64encode(cls.wav).decode()

    def setUp(self):
        super().setUp()
        self.server.default = (200, {}, {"text": " %s " % QUESTION}, 0)

    def _voice_provider(self, **vals):
        values = {"transcription_model": "whisper-test", "api_key": SECRET}
        values.update(vals)
        return self._create_provider(**values)


@tagged("post_install", "-at_install", "crm_sales_agent")
class TestCopilotVoice(CopilotVoiceCommon):
    def test_transcribe_wav(self):
        """A WAV recording goes as multipart (model + file) to {base_url}/audio/transcriptions
        and its text comes back; the call is logged under the assistant purpose, without the
        audio or the key."""
        self._voice_provider()
        Copilot = self.env["crm.copilot"].with_user(self.user_sales_salesman)
        self.assertTrue(Copilot.transcription_available())
        result = Copilot.transcribe(self.wav_b64, "audio/wav")
        self.assertEqual(result, {"text": QUESTION, "error": False})

        self.assertEqual(len(self.server.requests), 1)
        request = self.server.requests[0]
        self.assertEqual(request["path"], "/v1/audio/transcriptions")
        self.assertTrue(request["headers"]["Content-Type"].startswith("multipart/form-data"))
        self.assertEqual(request["headers"]["Authorization"], "Bearer %s" % SECRET)
        parts = multipart_fields(request)
        self.assertEqual(parts["model"][2], b"whisper-test")
        filename, content_type, content = parts["file"]
        self.assertEqual((filename, content_type), ("audio.wav", "audio/wav"))
        self.assertEqual(content, self.wav, "the WAV file is sent as recorded")
        with wave.open(io.BytesIO(content)) as wav:
            self.assertEqual((wav.getnchannels(), wav.getframerate()), (1, 8000))

        log = self.env["llm.call.log"].sudo().search([], order="id desc", limit=1)
        self.assertEqual(
            (log.purpose, log.outcome, log.user_id, log.model_name),
            ("assistant", "ok", self.user_sales_salesman, "whisper-test"),
        )
        self.assertIn("audio recording", log.content_sent)
        for leaked in ("RIFF", self.wav_b64[:40], SECRET):
            self.assertNotIn(leaked, log.content_sent)

    def test_browser_mimetype(self):
        """Chrome's MediaRecorder says audio/webm;codecs=opus: sent as audio.webm."""
        self._voice_provider()
        self.env["crm.copilot"].with_user(self.user_sales_salesman).transcribe(
            self.wav_b64, "audio/webm;codecs=opus"
        )
        parts = multipart_fields(self.server.requests[0])
        self.assertEqual(parts["file"][:2], ("audio.webm", "audio/webm"))

    def test_hidden_without_transcription(self):
        """The microphone is hidden without a provider, with providers that do not transcribe
        (no transcription model, Anthropic), and when the assistant is switched off."""
        Copilot = self.env["crm.copilot"].with_user(self.user_sales_salesman)
        self.assertFalse(Copilot.transcription_available(), "no provider")
        chat_only = self._create_provider()
        self.assertFalse(Copilot.transcription_available(), "no transcription model")
        chat_only.write({"provider_type": "anthropic", "transcription_model": "whisper-1"})
        self.assertFalse(Copilot.transcription_available(), "Anthropic has no such endpoint")
        result = Copilot.transcribe(self.wav_b64, "audio/wav")
        self.assertEqual(result["text"], "")
        self.assertIn("speech to text", result["error"])
        self.assertFalse(self.server.requests)

        self._voice_provider(name="Whisper", is_default=False, sequence=20)
        self.assertTrue(Copilot.transcription_available(), "a fallback provider transcribes")

        # switched off as the settings page saves it (twice): the microphone goes, nothing is sent
        Settings = self.env["res.config.settings"]
        for _save in range(2):
            Settings.create({"llm_purpose_assistant": False}).execute()
        self.assertFalse(Settings.create({}).llm_purpose_assistant)
        self.assertFalse(Copilot.transcription_available())
        result = Copilot.transcribe(self.wav_b64, "audio/wav")
        self.assertEqual(result["text"], "")
        self.assertIn("switched off", result["error"])
        self.assertFalse(self.server.requests)
        Settings.create({"llm_purpose_assistant": True}).execute()
        self.assertTrue(Copilot.transcription_available())

    def test_bad_recordings(self):
        """Empty, too large, not base64 or not audio: a plain UserError, nothing sent."""
        self._voice_provider()
        Copilot = self.env["crm.copilot"].with_user(self.user_sales_salesman)
        too_large = base64.b64encode(b"\0" * (TRANSCRIPTION_MAX_BYTES + 1)).decode()
        cases = {
            "empty": ("", "audio/wav"),
            "too large": (too_large, "audio/wav"),
            "not base64": ("not base64 at all!", "audio/wav"),
            "not audio": (self.wav_b64, "application/x-msdownload"),
            "no type": (self.wav_b64, ""),
            "not text": (["a list"], "audio/wav"),
        }
        for case, (audio, mimetype) in cases.items():
            with self.subTest(case=case), self.assertRaises(UserError):
                Copilot.transcribe(audio, mimetype)
        self.assertFalse(self.server.requests)
        # just under the limit is accepted
        just_right = base64.b64encode(b"\0" * TRANSCRIPTION_MAX_BYTES).decode()
        self.assertEqual(Copilot.transcribe(just_right, "audio/wav")["text"], QUESTION)

    def test_budget_and_provider_errors(self):
        """A budget refusal and a provider error come back as the gateway's message."""
        self._voice_provider()
        self._set_config(budget_requests_per_minute=1)
        Copilot = self.env["crm.copilot"].with_user(self.user_sales_salesman)
        self.assertEqual(Copilot.transcribe(self.wav_b64, "audio/wav")["text"], QUESTION)
        refused = Copilot.transcribe(self.wav_b64, "audio/wav")
        self.assertEqual(refused["text"], "")
        self.assertIn("budget", refused["error"].lower())
        self.assertEqual(len(self.server.requests), 1, "refused before any HTTP")

        self._set_config(budget_requests_per_minute=0)
        self.server.default = (500, {}, {"error": {"message": "model overloaded"}}, 0)
        failed = Copilot.transcribe(self.wav_b64, "audio/wav")
        self.assertEqual(failed["text"], "")
        self.assertIn("HTTP 500", failed["error"])
        self.assertNotIn(SECRET, failed["error"])

    def test_non_crm_users_refused(self):
        self._voice_provider()
        employee = mail_new_test_user(self.env, login="voice_employee", groups="base.group_user")
        Copilot = self.env["crm.copilot"].with_user(employee)
        with self.assertRaises(AccessError):
            Copilot.transcription_available()
        with self.assertRaises(AccessError):
            Copilot.transcribe(self.wav_b64, "audio/wav")
        self.assertFalse(self.server.requests)


@tagged("post_install", "-at_install", "crm_sales_agent")
class TestCopilotVoiceAccess(CopilotVoiceCommon, HttpCase):
    """transcription_available and transcribe over /web/dataset/call_kw, per role."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        company = cls.company_main
        cls.env["crm.team"].create({"name": "Voice Team", "user_id": cls.user_sales_leads.id})
        cls.role_users = {
            "portal": mail_new_test_user(
                cls.env, login="voice_portal", groups="base.group_portal", company_id=company.id
            ),
            "employee": mail_new_test_user(
                cls.env, login="voice_internal", groups="base.group_user", company_id=company.id
            ),
            "salesperson": cls.user_sales_salesman,
            "team_leader": cls.user_sales_leads,
            "manager": cls.user_sales_manager,
        }

    def _rpc(self, method, args):
        response = call_kw(self, "crm.copilot", method, args)
        self.assertNotIn(SECRET, response.text)
        return response.json()

    def test_roles(self):
        self._voice_provider()
        allowed = {"salesperson", "team_leader", "manager"}
        for role, user in self.role_users.items():
            with self.subTest(role=role):
                self.authenticate(user.login, user.login)
                self.server.requests.clear()
                available = self._rpc("transcription_available", [])
                text = self._rpc("transcribe", [self.wav_b64, "audio/wav"])
                if role in allowed:
                    self.assertIs(available.get("result"), True, available)
                    self.assertEqual(text.get("result"), {"text": QUESTION, "error": False})
                    self.assertEqual(len(self.server.requests), 1)
                else:
                    for answer in (available, text):
                        self.assertEqual(
                            answer["error"]["data"]["name"], "odoo.exceptions.AccessError"
                        )
                    self.assertFalse(self.server.requests, "%s sent audio" % role)

    def test_bad_input_is_a_plain_error(self):
        self._voice_provider()
        user = self.role_users["salesperson"]
        self.authenticate(user.login, user.login)
        answer = self._rpc("transcribe", ["%%%", "audio/wav"])
        self.assertEqual(answer["error"]["data"]["name"], "odoo.exceptions.UserError")
        self.assertEqual(answer["error"]["data"]["message"], "The recording could not be read.")
