/** @odoo-module **/

import { reactive } from "@odoo/owl";
import { registry } from "@web/core/registry";

/**
 * The copilot's conversation, shared by the systray panel and the full-page action: it
 * survives navigation (a record opened from an answer, then back) and goes on in either place.
 * The server keeps it too (``crm.copilot.session``): ``sessionId`` links the two.
 */
export const copilotService = {
    start() {
        const conversation = reactive({
            messages: [],
            sessionId: false,
            lead: null, // {id, name}: the lead the questions are about
            open: false, // the systray panel
        });
        let nextId = 1;
        return {
            conversation,
            nextId: () => nextId++,
            /** Starts a new conversation when the lead it is about changes. */
            setLead(lead) {
                if ((conversation.lead && conversation.lead.id) !== (lead && lead.id)) {
                    this.reset();
                    conversation.lead = lead || null;
                }
            },
            reset() {
                conversation.messages.splice(0);
                conversation.sessionId = false;
            },
        };
    },
};

registry.category("services").add("crm_copilot", copilotService);
