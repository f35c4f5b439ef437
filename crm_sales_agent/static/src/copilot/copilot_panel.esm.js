/** @odoo-module **/

import { Component, onWillStart, onWillUnmount, useEffect, useRef, useState } from "@odoo/owl";
import { browser } from "@web/core/browser/browser";
import { _t } from "@web/core/l10n/translation";
import { useService } from "@web/core/utils/hooks";

const MAX_RECORDING_MS = 60000; // a spoken question, not a dictation
const PROPOSAL_ICONS = { activity: "fa-clock-o", stage: "fa-flag", note: "fa-sticky-note-o" };

/** The plain message of a failed call (the server's UserError/AccessError text). */
export function errorMessage(error) {
    return (error && ((error.data && error.data.message) || error.message)) || _t("Unknown error");
}

function blobToBase64(blob) {
    return new Promise((resolve, reject) => {
        const reader = new FileReader();
        reader.onload = () => resolve(String(reader.result).split(",")[1] || "");
        reader.onerror = () => reject(reader.error);
        reader.readAsDataURL(blob);
    });
}

/**
 * The conversation with the CRM copilot (``crm.copilot``): questions and answers, the answers'
 * figures (each opens the leads it counts) and records, proposals confirmed by a click, and a
 * microphone when a provider transcribes speech.
 */
export class CopilotPanel extends Component {
    static template = "crm_sales_agent.CopilotPanel";
    static props = {
        onClose: { type: Function, optional: true },
        fullPage: { type: Boolean, optional: true },
    };

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.ui = useService("ui");
        this.copilot = useService("crm_copilot");
        this.conversation = useState(this.copilot.conversation);
        this.state = useState({
            question: "",
            asking: false,
            suggestions: [],
            voice: false,
            recording: false,
            transcribing: false,
            voiceError: "",
            loadError: "",
        });
        this.inputRef = useRef("question");
        this.messagesRef = useRef("messages");
        this.proposalIcons = PROPOSAL_ICONS;
        onWillStart(() => this.loadContext());
        useEffect(
            () => {
                const el = this.messagesRef.el;
                if (el) {
                    el.scrollTop = el.scrollHeight;
                }
            },
            () => [this.conversation.messages.length, this.state.asking]
        );
        onWillUnmount(() => this.stopRecording(true));
    }

    get leadId() {
        return (this.conversation.lead && this.conversation.lead.id) || false;
    }

    async loadContext() {
        const kwargs = this.leadId ? { lead_id: this.leadId } : {};
        try {
            const [suggestions, voice] = await Promise.all([
                this.orm.call("crm.copilot", "suggested_questions", [], kwargs),
                this.orm.call("crm.copilot", "transcription_available", []),
            ]);
            this.state.suggestions = suggestions || [];
            this.state.voice = Boolean(voice);
            this.state.loadError = "";
        } catch (error) {
            this.state.loadError = errorMessage(error);
        }
    }

    // ------------------------------------------------------------------ conversation

    async ask(text) {
        const question = (text === undefined ? this.state.question : text).trim();
        if (!question || this.state.asking) {
            return;
        }
        const conversation = this.conversation;
        conversation.messages.push({ id: this.copilot.nextId(), role: "user", text: question });
        this.state.question = "";
        this.state.asking = true;
        const kwargs = {};
        if (this.leadId) {
            kwargs.lead_id = this.leadId;
        }
        if (conversation.sessionId) {
            kwargs.session_id = conversation.sessionId;
        }
        let result;
        try {
            result = await this.orm.call("crm.copilot", "ask", [question], kwargs);
            conversation.sessionId = result.session_id || conversation.sessionId;
        } catch (error) {
            result = { answer: "", error: errorMessage(error) };
        } finally {
            this.state.asking = false;
        }
        conversation.messages.push({
            id: this.copilot.nextId(),
            role: "copilot",
            answer: result.answer || "",
            error: result.error || false,
            agent: result.agent || "",
            method: result.method || "",
            figures: result.figures || [],
            records: result.records || [],
            proposals: (result.proposals || []).map((proposal) => ({
                ...proposal,
                status: "proposed", // proposed, running, done, failed
                result: null,
            })),
        });
    }

    onKeydown(ev) {
        if (ev.key === "Enter" && !ev.shiftKey) {
            ev.preventDefault();
            this.ask();
        }
    }

    newConversation() {
        this.copilot.reset();
        this.state.question = "";
    }

    async forgetLead() {
        this.copilot.setLead(null);
        await this.loadContext();
    }

    async confirmProposal(proposal) {
        if (proposal.status !== "proposed") {
            return;
        }
        proposal.status = "running";
        try {
            const result = await this.orm.call("crm.copilot", "confirm_proposal", [
                this.conversation.sessionId,
                proposal.id,
            ]);
            proposal.result = result;
            proposal.status = result.done ? "done" : "failed";
        } catch (error) {
            proposal.result = { done: false, message: errorMessage(error) };
            proposal.status = "failed";
        }
    }

    // ------------------------------------------------------------------ navigation

    formatValue(value) {
        if (typeof value === "number") {
            return value.toLocaleString(undefined, { maximumFractionDigits: 2 });
        }
        return value === false || value === null || value === undefined ? "" : String(value);
    }

    async openFigure(figure) {
        await this.action.doAction({
            type: "ir.actions.act_window",
            name: figure.label,
            res_model: figure.model || "crm.lead",
            domain: figure.domain || [],
            views: [
                [false, "list"],
                [false, "form"],
            ],
            target: "current",
        });
        this.afterNavigation();
    }

    async openRecord(record) {
        await this.action.doAction({
            type: "ir.actions.act_window",
            res_model: record.model,
            res_id: record.id,
            views: [[false, "form"]],
            target: "current",
        });
        this.afterNavigation();
    }

    afterNavigation() {
        // on a phone the panel covers the screen: show what was opened
        if (this.ui.isSmall && this.props.onClose) {
            this.props.onClose();
        }
    }

    // ------------------------------------------------------------------ voice

    async toggleRecording() {
        if (this.state.recording) {
            this.stopRecording();
        } else {
            await this.startRecording();
        }
    }

    async startRecording() {
        this.state.voiceError = "";
        const devices = browser.navigator.mediaDevices;
        if (!devices || !devices.getUserMedia || !window.MediaRecorder) {
            this.state.voiceError = _t("This browser cannot record audio.");
            return;
        }
        let stream;
        try {
            stream = await devices.getUserMedia({ audio: true });
        } catch {
            this.state.voiceError = _t(
                "The microphone is not available: allow this page to use it in the browser."
            );
            return;
        }
        const recorder = new window.MediaRecorder(stream);
        const chunks = [];
        recorder.addEventListener("dataavailable", (ev) => {
            if (ev.data && ev.data.size) {
                chunks.push(ev.data);
            }
        });
        recorder.addEventListener("stop", () => {
            stream.getTracks().forEach((track) => track.stop());
            if (!recorder.discarded && chunks.length) {
                const type = (recorder.mimeType || chunks[0].type || "audio/webm").split(";")[0];
                this.transcribe(new Blob(chunks, { type }));
            }
        });
        this.recorder = recorder;
        recorder.start();
        this.state.recording = true;
        this.recordingTimeout = browser.setTimeout(() => this.stopRecording(), MAX_RECORDING_MS);
    }

    stopRecording(discard = false) {
        browser.clearTimeout(this.recordingTimeout);
        if (this.recorder && this.recorder.state !== "inactive") {
            this.recorder.discarded = discard;
            this.recorder.stop();
        }
        this.recorder = null;
        this.state.recording = false;
    }

    async transcribe(blob) {
        this.state.transcribing = true;
        try {
            const audio = await blobToBase64(blob);
            const result = await this.orm.call("crm.copilot", "transcribe", [audio, blob.type]);
            if (result.error) {
                this.state.voiceError = result.error;
            } else {
                // in the question box, for the user to check before asking
                this.state.question = [this.state.question.trim(), result.text || ""]
                    .filter(Boolean)
                    .join(" ");
                if (this.inputRef.el) {
                    this.inputRef.el.focus();
                }
            }
        } catch (error) {
            this.state.voiceError = errorMessage(error);
        } finally {
            this.state.transcribing = false;
        }
    }
}
