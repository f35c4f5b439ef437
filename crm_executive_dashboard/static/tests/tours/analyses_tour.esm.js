/** @odoo-module **/

import { registry } from "@web/core/registry";

const PAGE = (name) => `.o_dashboard_analysis[data-analysis='${name}']:not(.o_dashboard_reloading)`;

/**
 * Clicks the first element with a value of a chart of an analysis page, where Chart.js draws it.
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

/** Clicks the first figure of a table that is not zero (a zero opens an empty list). */
function clickFigure(table) {
    const figures = [...document.querySelectorAll(`${table} .o_analysis_figure, ${table} .o_analysis_deal`)];
    const figure = figures.find((el) => el.classList.contains("o_analysis_deal") || !["0", "–"].includes(el.textContent.trim()));
    if (!figure) {
        throw new Error(`The table ${table} has no figure to click`);
    }
    figure.click();
}

function checkList() {
    if (document.querySelector(".o_error_dialog, .o_dialog .modal-title")) {
        throw new Error("An error was shown instead of the list");
    }
}

function openAndBack(page, content, run) {
    return [
        { content, trigger: `${PAGE(page)} .o_crm_executive_dashboard_chart, ${PAGE(page)} table`, run },
        {
            content: "The leads are listed, without error",
            trigger: ".o_list_view .o_data_row",
            run: checkList,
        },
        {
            content: "Back to the dashboard, on the same page",
            trigger: ".o_breadcrumb .breadcrumb-item a:contains('CRM Dashboard')",
        },
        { content: "The page is shown again", trigger: PAGE(page), run() {} },
    ];
}

function pageSteps(page, charts, tables) {
    return [
        {
            content: `Open the ${page} page`,
            trigger: `.o_dashboard_pages a[data-page='${page}']`,
        },
        { content: `The ${page} page is loaded`, trigger: `${PAGE(page)} .o_analysis_table`, run() {} },
        ...charts.flatMap((chart) =>
            openAndBack(page, `Click an element of the ${chart} chart`, () => clickChart(chart))
        ),
        ...tables.flatMap((table) =>
            openAndBack(page, `Click a figure of ${table}`, () => clickFigure(`${PAGE(page)} ${table}`))
        ),
    ];
}

registry.category("web_tour.tours").add("crm_executive_dashboard_analyses_tour", {
    test: true,
    url: "/web#action=crm_executive_dashboard.crm_executive_dashboard_action",
    steps: () => [
        { content: "The dashboard is open", trigger: ".o_crm_executive_dashboard .o_dashboard_kpis", run() {} },
        ...pageSteps("funnel", ["funnel"], [".o_analysis_funnel_table", ".o_analysis_breakdown_table"]),
        ...pageSteps("bottlenecks", ["bottlenecks"], [".o_analysis_norms_table", ".o_analysis_deals_table"]),
        ...pageSteps(
            "winloss",
            ["winloss_trend", "winloss_rate"],
            [".o_analysis_win_table", ".o_analysis_lost_table"]
        ),
        ...pageSteps("roi", ["roi"], [".o_analysis_roi_table"]),
        {
            content: "Back to the overview",
            trigger: ".o_dashboard_pages a[data-page='main']",
        },
        { content: "The overview is shown", trigger: ".o_crm_executive_dashboard .o_dashboard_kpis", run() {} },
    ],
});

registry.category("web_tour.tours").add("crm_executive_dashboard_bottlenecks_empty_tour", {
    test: true,
    url: "/web#action=crm_executive_dashboard.crm_executive_dashboard_action",
    steps: () => [
        { content: "The dashboard is open", trigger: ".o_crm_executive_dashboard .o_dashboard_kpis", run() {} },
        { content: "Open the bottlenecks page", trigger: ".o_dashboard_pages a[data-page='bottlenecks']" },
        {
            content: "Without a stage history of won deals, the norms table says why it is empty",
            trigger: `${PAGE("bottlenecks")} .o_analysis_norms_table .o_analysis_norms_empty:contains('No won deal moved')`,
            run() {},
        },
        {
            content: "and so does the list of the deals over their norm",
            trigger: `${PAGE("bottlenecks")} .o_analysis_deals_table td:contains('No open deal is over')`,
            run() {},
        },
        {
            content: "Its total is zero and opens an empty list with a message, not sample leads",
            trigger: `${PAGE("bottlenecks")} .o_analysis_over_total:contains('0')`,
        },
        {
            content: "The empty list says there is nothing behind the figure",
            // the help rendered as HTML (a string would show its tags as text)
            trigger: ".o_list_view .o_view_nocontent .o_view_nocontent_empty_folder:contains('Nothing behind this figure')",
            run() {
                if (document.querySelector(".o_list_view .o_data_row, .o_view_sample_data")) {
                    throw new Error("The empty list shows rows");
                }
            },
        },
    ],
});
