/** @odoo-module **/

import { registry } from "@web/core/registry";

const DASHBOARD = ".o_crm_executive_dashboard:not(:has(.o_dashboard_reloading))";

/**
 * "Send me a sample now" on the dashboard: the digest of the last complete period is queued
 * for the digest cron at once, and the page says where it will be mailed.
 */
registry.category("web_tour.tours").add("crm_executive_dashboard_digest_sample_tour", {
    test: true,
    url: "/web#action=crm_executive_dashboard.crm_executive_dashboard_action",
    steps: () => [
        {
            content: "Send me a sample now",
            trigger: `${DASHBOARD} .o_dashboard_digest_sample`,
        },
        {
            content: "The digest is being prepared, for the user's address",
            trigger:
                ".o_notification:contains('it will be mailed to admin@yourcompany.example.com')",
            run() {
                if (document.querySelector(".o_error_dialog")) {
                    throw new Error("An error was shown");
                }
            },
        },
    ],
});
