import base64
import binascii

from odoo import _, api, models
from odoo.exceptions import UserError

from odoo.addons.llm_lead_scoring.models.llm_service import TRANSCRIPTION_MAX_BYTES


class CrmCopilot(models.AbstractModel):
    """Voice input of the copilot: speech to text through the AI gateway (purpose
    *Assistant*), for the question box; the user checks the text before asking."""

    _inherit = "crm.copilot"

    # ------------------------------------------------------------
    # VOICE (public: called by the copilot panel)
    # ------------------------------------------------------------

    @api.model
    def transcription_available(self):
        """Whether the microphone is shown: the assistant is on for the user's company and one
        of its providers transcribes speech (CRM users only)."""
        self._check_copilot_user()
        config = self.env["res.company"]._ai_settings("llm_", self.env.company)
        return bool(config.get("purpose_assistant")) and bool(
            self.env["llm.service"]._transcription_providers(self.env.company)
        )

    @api.model
    def transcribe(self, audio_base64, mimetype):
        """The text of a recording, for the question box (CRM users only).

        :param str audio_base64: the recording, base64-encoded (the browser's MediaRecorder)
        :param str mimetype: e.g. ``audio/webm;codecs=opus``
        :return dict: ``{"text": str, "error": False}``, or ``{"text": "", "error": str}`` when
            the gateway refuses (budget, assistant switched off, provider error)
        :raise UserError: a recording that is not base64, empty, too large or of another type
        """
        self._check_copilot_user()
        if not isinstance(audio_base64, str) or not isinstance(mimetype, str):
            raise UserError(_("The recording could not be read."))
        # refused before decoding: base64 is 4/3 of the audio
        if len(audio_base64) > (TRANSCRIPTION_MAX_BYTES // 3 + 1) * 4:
            raise UserError(
                _(
                    "The recording is too long (at most %(max)s MB): ask a shorter question.",
                    max=TRANSCRIPTION_MAX_BYTES // 1024 // 1024,
                )
            )
        try:
            audio = base64.b64decode(audio_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise UserError(_("The recording could not be read.")) from exc
        result = self.env["llm.service"]._transcribe(audio, mimetype, company=self.env.company)
        if not result["success"]:
            return {"text": "", "error": result["error"]}
        return {"text": result["content"] or "", "error": False}
