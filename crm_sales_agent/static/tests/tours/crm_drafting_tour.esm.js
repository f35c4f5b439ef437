/** @odoo-module **/

import { registry } from "@web/core/registry";

// a step's trigger is searched inside the open dialog (Odoo's tours): no ".modal" prefix
const DIALOG = ".o_form_view";
const WORKING = ".o_crm_sales_agent_draft_working";

function noErrorDialog() {
    if (document.querySelector(".o_error_dialog")) {
        throw new Error("An error was shown");
    }
}

function openDraft() {
    return [
        {
            content: "Open “Draft with AI” from the lead",
            trigger: ".o_form_view button[name='action_sales_agent_draft']",
        },
    ];
}

function closeDialog() {
    return [
        {
            content: "Close the window: the AI goes on working in the background",
            trigger: ".modal-footer button:contains('Close')",
        },
        {
            content: "Back on the lead",
            trigger: "body:not(:has(.modal)) .o_form_view button[name='action_sales_agent_draft']",
            run: noErrorDialog,
        },
    ];
}

/**
 * 1. A new draft: Generate queues it and returns at once ("Still working"), Refresh keeps
 * waiting, Cancel stops it, Generate again, and the window is closed while it works.
 */
registry.category("web_tour.tours").add("crm_sales_agent_drafting_tour", {
    test: true,
    steps: () => [
        ...openDraft(),
        {
            content: "A new draft: an e-mail unless another kind is chosen",
            trigger: ".o_field_widget[name='kind'] input[data-value='email']",
            run: () => {
                const email = document.querySelector(".modal .o_field_widget[name='kind'] input[data-value='email']");
                if (!email.checked) {
                    throw new Error("The kind of draft is not e-mail by default");
                }
            },
        },
        {
            content: "Generate",
            trigger: "button[name='action_generate']",
        },
        {
            content: "The click returned: the AI is still working",
            trigger: WORKING,
            extra_trigger: "button[name='action_cancel']",
            run: () => {},
        },
        {
            content: "Refresh: still working (no answer yet)",
            trigger: "button[name='action_refresh']",
        },
        {
            content: "Cancel the request",
            trigger: "button[name='action_cancel']",
            extra_trigger: WORKING,
        },
        {
            content: "Cancelled: said in plain words, Generate offered again",
            trigger: "button[name='action_generate']",
            extra_trigger: `${DIALOG}:contains('Cancelled: no AI draft was written.')`,
        },
        {
            content: "Working again",
            trigger: WORKING,
            run: () => {},
        },
        ...closeDialog(),
    ],
});

/**
 * 2. The AI job cron wrote the draft: the lead reopens it ready; the e-mail opens in the
 * composer, which is discarded (nothing is sent without the user).
 */
registry.category("web_tour.tours").add("crm_sales_agent_drafting_ready_tour", {
    test: true,
    steps: () => [
        ...openDraft(),
        {
            content: "The draft is ready, written by the AI",
            trigger: ".o_field_widget[name='body'] textarea",
            extra_trigger: ".modal:contains('Review it before use.')",
            run: () => {
                const body = document.querySelector(".modal .o_field_widget[name='body'] textarea");
                if (!body.value.includes("the 40 chairs can ship in May")) {
                    throw new Error(`The draft shown is "${body.value}"`);
                }
            },
        },
        {
            content: "Open it in the e-mail composer",
            trigger: "button[name='action_open_composer']",
        },
        {
            content: "The composer has the AI's subject",
            trigger: ".o_field_widget[name='subject'] input",
            run: () => {
                const subject = document.querySelector(".modal .o_field_widget[name='subject'] input");
                if (subject.value !== "Your chairs") {
                    throw new Error(`The composer's subject is "${subject.value}"`);
                }
            },
        },
        {
            content: "Discard it",
            trigger: ".modal-footer button:contains('Discard')",
        },
        {
            content: "Nothing was sent: back on the lead",
            trigger: "body:not(:has(.modal)) .o_form_view",
            run: noErrorDialog,
        },
        ...openDraft(),
        {
            content: "Ask for another version",
            trigger: "button:contains('Regenerate')",
        },
        {
            content: "Working on it",
            trigger: WORKING,
            run: () => {},
        },
        ...closeDialog(),
    ],
});

/**
 * 3. The model echoed the prompt: the draft is rejected, the template is shown with the
 * reason, and Retry asks again.
 */
registry.category("web_tour.tours").add("crm_sales_agent_drafting_rejected_tour", {
    test: true,
    steps: () => [
        ...openDraft(),
        {
            content: "Rejected: the template, and why",
            trigger: `${DIALOG}:contains('No usable AI answer: this text was built from the lead')`,
            extra_trigger: `${DIALOG}:contains('was not usable')`,
            run: () => {},
        },
        {
            content: "Retry",
            trigger: "button[name='action_retry']",
        },
        {
            content: "Asked again",
            trigger: WORKING,
            run: () => {},
        },
        {
            content: "Cancel it",
            trigger: "button[name='action_cancel']",
        },
        {
            content: "Cancelled",
            trigger: `${DIALOG}:contains('Cancelled: no AI draft was written.')`,
            run: () => {},
        },
        ...closeDialog(),
    ],
});
