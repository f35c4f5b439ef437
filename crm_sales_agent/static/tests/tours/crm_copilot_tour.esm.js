/** @odoo-module **/

import { registry } from "@web/core/registry";

const LEAD = "Copilot Tour Lead";
const PANEL = ".o_crm_copilot";
const IDLE = `${PANEL}:not(:has(.o_crm_copilot_thinking))`;

function noErrorDialog() {
    if (document.querySelector(".o_error_dialog, .o_dialog .modal-title")) {
        throw new Error("An error was shown instead of the view");
    }
}

/**
 * The copilot from the systray (a suggested question, a figure, a typed question, a record
 * link), then from the lead form (the lead as context, a proposal confirmed by a click).
 */
registry.category("web_tour.tours").add("crm_sales_agent_copilot_tour", {
    test: true,
    url: "/web",
    steps: () => [
        {
            content: "Open the copilot from the systray",
            trigger: ".o_crm_copilot_systray_toggle",
        },
        {
            content: "The empty state says what to ask; ask a suggested question",
            trigger: `${PANEL} .o_crm_copilot_suggestion:contains('Pipeline by stage')`,
            extra_trigger: `${PANEL} .o_crm_copilot_empty`,
        },
        {
            content: "The answer has figures, counted by rules (no provider)",
            trigger: `${IDLE} .o_crm_copilot_answer .o_crm_copilot_figure`,
            extra_trigger: `${PANEL} .o_crm_copilot_method:contains('rules')`,
        },
        {
            content: "The figure's leads open in a list",
            trigger: ".o_list_view .o_data_row",
            run: noErrorDialog,
        },
        {
            content: "Type a question about the lead",
            trigger: `${PANEL} textarea.o_crm_copilot_input`,
            run: `text Summarise ${LEAD}`,
        },
        {
            content: "Ask it",
            trigger: `${PANEL} .o_crm_copilot_send:not([disabled])`,
        },
        {
            content: "The answer links the lead it used: open it",
            trigger: `${IDLE} .o_crm_copilot_answer:last .o_crm_copilot_record:contains('${LEAD}')`,
        },
        {
            content: "The lead's form is open",
            trigger: ".o_form_view .o_form_sheet",
            extra_trigger: `.o_last_breadcrumb_item:contains('${LEAD}')`,
            run: noErrorDialog,
        },
        {
            content: "Close the systray panel",
            trigger: `${PANEL} .o_crm_copilot_close`,
        },
        {
            content: "Ask the copilot about this lead from its form",
            trigger: ".o_form_view button:contains('Ask the copilot')",
            extra_trigger: ".o_crm_copilot_systray:not(:has(.active))",
        },
        {
            content: "The lead is the subject; ask a suggested question that proposes an activity",
            trigger: `.o_crm_copilot_action .o_crm_copilot_suggestion:contains('Schedule a call')`,
            extra_trigger: `.o_crm_copilot_action .o_crm_copilot_lead:contains('${LEAD}')`,
        },
        {
            content: "Confirm the proposal: only now is the activity written",
            trigger: `.o_crm_copilot_action ${IDLE} .o_crm_copilot_proposal:not([disabled])`,
        },
        {
            content: "The result is shown",
            trigger: ".o_crm_copilot_action .o_crm_copilot_proposal_result.text-success",
            run: noErrorDialog,
        },
    ],
});
