/** @odoo-module **/

import { registry } from "@web/core/registry";
import { stepUtils } from "@web_tour/tour_service/tour_utils";

registry.category("web_tour.tours").add("crm_executive_dashboard_tour", {
    test: true,
    url: "/web",
    steps: () => [
        stepUtils.showAppsMenuItem(),
        {
            content: "Open the CRM app",
            trigger: ".o_app[data-menu-xmlid='crm.crm_menu_root']",
        },
        {
            content: "Open the Sales menu",
            trigger: ".o_menu_sections button[data-menu-xmlid='crm.crm_menu_sales']",
        },
        {
            content: "Open the CRM Dashboard",
            trigger: ".dropdown-item[data-menu-xmlid='crm_executive_dashboard.crm_executive_dashboard_menu']",
        },
        {
            content: "The KPI cards are shown",
            trigger: ".o_crm_executive_dashboard .o_dashboard_kpis [data-kpi='total_leads'] .o_kpi_value",
            run() {},
        },
        {
            content: "Choose this year",
            trigger: ".o_crm_executive_dashboard select.o_dashboard_period",
            run: "text this_year",
        },
        {
            content: "The period is this year",
            trigger: ".o_crm_executive_dashboard:not(:has(.o_dashboard_reloading)) .o_dashboard_period_label",
            run() {
                const year = new Date().getFullYear();
                const from = document.querySelector(".o_dashboard_date_from").value;
                if (from !== `${year}-01-01`) {
                    throw new Error(`The period should start on ${year}-01-01, not ${from}`);
                }
            },
        },
        {
            // the router writes the URL on a later tick: checked once the charts are drawn
            content: "The charts are drawn and the URL keeps the period",
            trigger: ".o_crm_executive_dashboard_chart[data-chart='pipeline'] canvas",
            run() {
                if (!window.location.href.includes("dash_period=this_year")) {
                    throw new Error("The period is not kept in the URL: " + window.location.href);
                }
            },
        },
        {
            content: "Click the 'Leads created' KPI",
            trigger: ".o_crm_executive_dashboard [data-kpi='total_leads']",
        },
        {
            content: "The leads list is open",
            trigger: ".o_list_view .o_data_row",
            extra_trigger: ".o_breadcrumb:contains('Leads created')",
            run() {},
        },
        {
            content: "Back to the dashboard",
            trigger: ".o_breadcrumb .breadcrumb-item a:contains('CRM Dashboard')",
        },
        {
            content: "The dashboard is back with the same period",
            trigger: ".o_crm_executive_dashboard select.o_dashboard_period",
            run() {
                const value = document.querySelector("select.o_dashboard_period").value;
                if (value !== "this_year") {
                    throw new Error(`The period should still be this_year, not ${value}`);
                }
            },
        },
    ],
});
