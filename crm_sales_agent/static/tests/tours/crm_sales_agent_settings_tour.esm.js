/** @odoo-module **/

import { registry } from "@web/core/registry";

/**
 * A manager in CRM's settings: the Sales Agent block, "Preview the next run" (nothing is
 * created), "Compute Again", Close; then a setting saved as the page saves it.
 */
registry.category("web_tour.tours").add("crm_sales_agent_settings_tour", {
    test: true,
    steps: () => [
        {
            content: "The Sales Agent block of CRM's settings",
            trigger: "button[name='action_sales_agent_dry_run']",
        },
        {
            content: "The preview says nothing was created, with counts per rule and salesperson",
            trigger: ".o_form_view:contains('Nothing was created or sent.')",
            extra_trigger: ".o_field_widget[name='line_ids'] .o_data_row:contains('Tour Rep')",
            run: () => {},
        },
        {
            content: "Compute again",
            trigger: ".modal-footer button[name='action_refresh']",
        },
        {
            content: "Still the preview",
            trigger: ".o_field_widget[name='line_ids'] .o_data_row:contains('Tour Rep')",
            run: () => {},
        },
        {
            content: "Close",
            trigger: ".modal-footer button:contains('Close')",
        },
        {
            content: "Switch off the inactivity follow-ups",
            trigger: "body:not(:has(.modal)) .o_field_widget[name='sales_agent_followup_enabled'] input",
        },
        {
            content: "Save (the settings page reloads)",
            trigger: ".o_form_button_save",
            run: (actions) => {
                document.body.classList.add("o_tour_before_save");
                actions.click();
            },
        },
        {
            content: "Saved: the settings page is loaded again (the test checks the value)",
            trigger: "body:not(.o_tour_before_save) button[name='action_sales_agent_dry_run']",
            run: () => {},
        },
    ],
});
