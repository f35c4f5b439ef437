/** @odoo-module **/

import { registry } from "@web/core/registry";

const DASHBOARD = ".o_crm_executive_dashboard:not(:has(.o_dashboard_reloading))";

/**
 * "Send me a sample now" on the dashboard: the digest of the last complete period is mailed
 * to the user at once, and the page says where it went.
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
            content: "The digest is on its way, to the user's address",
            trigger: ".o_notification:contains('is on its way to admin@yourcompany.example.com')",
            // the PDF is rendered in the click's request (wkhtmltopdf): 22 s on a loaded machine
            timeout: 90000,
            run() {
                if (document.querySelector(".o_error_dialog")) {
                    throw new Error("An error was shown");
                }
            },
        },
    ],
});
