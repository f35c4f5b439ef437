/** @odoo-module **/

import { registry } from "@web/core/registry";
import { stepUtils } from "@web_tour/tour_service/tour_utils";

const DASHBOARD = ".o_crm_executive_dashboard:not(:has(.o_dashboard_reloading))";

/**
 * Clicks the first element with a value of a chart of the dashboard, where Chart.js draws it.
 */
function clickChart(name) {
    const canvas = document.querySelector(`.o_crm_executive_dashboard_chart[data-chart='${name}'] canvas`);
    const chart = window.Chart.getChart(canvas);
    for (const [datasetIndex, dataset] of chart.data.datasets.entries()) {
        const index = dataset.data.findIndex((value) => value);
        if (index >= 0) {
            const { x, y } = chart.getDatasetMeta(datasetIndex).data[index].getCenterPoint();
            const rect = canvas.getBoundingClientRect();
            canvas.dispatchEvent(
                new MouseEvent("click", { clientX: rect.left + x, clientY: rect.top + y, bubbles: true })
            );
            return;
        }
    }
    throw new Error(`The ${name} chart has no element with a value`);
}

function checkList() {
    if (document.querySelector(".o_error_dialog, .o_dialog .modal-title")) {
        throw new Error("An error was shown instead of the list");
    }
}

/**
 * The steps that click an element of a chart, check the list it opens (titled ``title`` when
 * given) and come back.
 */
function chartSteps(name, title) {
    return [
        {
            content: `Click an element of the ${name} chart`,
            trigger: `${DASHBOARD} .o_crm_executive_dashboard_chart[data-chart='${name}'] canvas`,
            run() {
                clickChart(name);
            },
        },
        {
            content: `The list of the ${name} chart is open, with its records`,
            trigger: `.o_list_view .o_data_row`,
            extra_trigger: title ? `.o_breadcrumb .active:contains('${title}')` : ".o_breadcrumb .active",
            run: checkList,
        },
        {
            content: "Back to the dashboard",
            trigger: ".o_breadcrumb .breadcrumb-item a:contains('CRM Dashboard')",
        },
    ];
}

/**
 * The steps that click a figure of the dashboard (``selector``), check the list it opens,
 * titled ``title``, and come back.
 */
function figureSteps(selector, title) {
    return [
        {
            content: `Click the figure ${selector}`,
            trigger: `${DASHBOARD} ${selector}`,
        },
        {
            content: `The list of ${selector} is open, with its records`,
            trigger: ".o_list_view .o_data_row",
            extra_trigger: `.o_breadcrumb .active:contains('${title}')`,
            run: checkList,
        },
        {
            content: "Back to the dashboard",
            trigger: ".o_breadcrumb .breadcrumb-item a:contains('CRM Dashboard')",
        },
    ];
}

function setDate(selector, value) {
    const input = document.querySelector(selector);
    input.value = value;
    input.dispatchEvent(new Event("change", { bubbles: true }));
}

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
            content: "The KPI cards are shown, with their definition",
            trigger: ".o_crm_executive_dashboard .o_dashboard_kpis [data-kpi='total_leads'] .o_kpi_value",
            run() {
                const card = document.querySelector("[data-kpi='total_leads']");
                if (!card.title.includes("created in the period")) {
                    throw new Error(`The card has no definition: "${card.title}"`);
                }
            },
        },
        {
            content: "Choose this year",
            trigger: ".o_crm_executive_dashboard select.o_dashboard_period",
            run: "text this_year",
        },
        {
            content: "The period is this year, compared with the previous year",
            trigger: `${DASHBOARD} .o_dashboard_period_label:contains('previous year')`,
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
            run: checkList,
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
        ...chartSteps("pipeline", "Pipeline"),
        ...chartSteps("forecast", "Expected to close"),
        ...chartSteps("trends", "Won"),
        ...chartSteps("ai", "Quality score"),
        ...figureSteps(".o_dashboard_ai_closed_high", "Quality score 70 and above, won or lost"),
        ...figureSteps(".o_dashboard_ai_closed_low", "Quality score below 40, won or lost"),
        ...figureSteps(".o_dashboard_ai_completed", "AI enrichment completed"),
        ...figureSteps(".o_dashboard_ai_pending", "AI enrichment pending"),
        ...figureSteps(".o_dashboard_ai_failed", "AI enrichment failed"),
        // the first team with won revenue: the demo data's or the test's
        ...chartSteps("teams", null),
        {
            content: "Open the activities done of a salesperson (Odoo's Activities report)",
            trigger: `${DASHBOARD} .o_dashboard_agents tr:has(td:contains('Mitchell Admin')) .o_dashboard_activities_done a`,
        },
        {
            content: "The Activities report lists the done activity",
            trigger: ".o_list_view .o_data_row",
            extra_trigger: ".o_breadcrumb .active:contains('Activities done')",
            run: checkList,
        },
        {
            content: "Back to the dashboard",
            trigger: ".o_breadcrumb .breadcrumb-item a:contains('CRM Dashboard')",
        },
        {
            content: "Choose a month without any lead",
            trigger: `${DASHBOARD} .o_dashboard_date_from`,
            run() {
                setDate(".o_dashboard_date_to", "2001-01-31");
                setDate(".o_dashboard_date_from", "2001-01-01");
            },
        },
        {
            content: "The page says the period is empty",
            trigger: `${DASHBOARD} .o_dashboard_empty`,
            run() {},
        },
        {
            content: "Click the 'Leads created' KPI (0)",
            trigger: `${DASHBOARD} [data-kpi='total_leads']:contains('0')`,
        },
        {
            content: "An empty list with a message, no sample leads",
            trigger: ".o_list_view .o_view_nocontent .o_view_nocontent_empty_folder:contains('Nothing behind this figure')",
            extra_trigger: ".o_breadcrumb:contains('Leads created')",
            run() {
                checkList();
                if (document.querySelector(".o_view_sample_data, .o_sample_data_disabled")) {
                    throw new Error("Sample leads are shown for an empty figure");
                }
            },
        },
    ],
});
