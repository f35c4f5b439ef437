/** @odoo-module **/

import { registry } from "@web/core/registry";

function aiTab() {
    return {
        content: "Open the AI Insights tab",
        trigger: ".o_notebook .nav-link:contains('AI Insights')",
    };
}

/**
 * 1. A salesperson on a lead never scored: the empty state says so; "Score with AI" queues
 * it first in line and returns at once with a notification.
 */
registry.category("web_tour.tours").add("llm_lead_scoring_queue_tour", {
    test: true,
    steps: () => [
        aiTab(),
        {
            content: "Not scored yet: said in plain words",
            trigger: ".tab-pane.active:contains('Not scored yet.')",
            run: () => {},
        },
        {
            content: "Score with AI",
            trigger: ".o_form_view button[name='action_ai_score_now']",
        },
        {
            content: "The click returned at once: a notification, the lead is queued",
            trigger: ".o_notification:contains('Scoring')",
            run: () => {},
        },
    ],
});

/**
 * 2. After the background scoring: the scores, the method ("Rules + LLM"), the AI's summary
 * and next action; "Research the customer" answers in a notification.
 */
registry.category("web_tour.tours").add("llm_lead_scoring_scored_tour", {
    test: true,
    steps: () => [
        aiTab(),
        {
            content: "Scored by the LLM, with its summary and next action",
            trigger: ".tab-pane.active .o_field_widget[name='ai_analysis_method']:contains('Rules + LLM')",
            extra_trigger: ".tab-pane.active:contains('Call the CFO to confirm budget.')",
            run: () => {},
        },
        {
            content: "Research the customer",
            trigger: ".tab-pane.active button[name='action_ai_research']",
        },
        {
            content: "The research, from the lead's own data",
            trigger: ".o_notification:contains('Acme Industries sells industrial equipment')",
            run: () => {},
        },
    ],
});

/**
 * 3. A manager on the provider: Test Connection, Measure, then the provider's AI calls.
 */
registry.category("web_tour.tours").add("llm_lead_scoring_provider_tour", {
    test: true,
    steps: () => [
        {
            content: "Test Connection",
            trigger: ".o_form_view button[name='action_test_connection']",
        },
        {
            content: "The answer itself was checked",
            trigger: ".o_notification:contains('Connection works')",
            run: () => {},
        },
        {
            content: "Measure one real request",
            trigger: ".o_form_view button[name='action_measure']",
        },
        {
            content: "A measured latency and proposed settings",
            trigger: ".o_notification:contains('Measured:')",
            run: () => {},
        },
        {
            content: "The provider's AI calls",
            trigger: ".o_form_view button[name='action_view_calls']",
        },
        {
            content: "The calls just made are listed",
            trigger: ".o_list_view .o_data_row",
            run: () => {},
        },
    ],
});
