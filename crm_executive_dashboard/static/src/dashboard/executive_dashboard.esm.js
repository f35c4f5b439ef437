/** @odoo-module **/

import { Component, markup, onRendered, onWillStart, useState } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { KeepLast } from "@web/core/utils/concurrency";
import { Layout } from "@web/search/layout";
import { useSetupAction } from "@web/webclient/actions/action_hook";
import { _t } from "@web/core/l10n/translation";
import { formatCurrency } from "@web/core/currency";
import { humanNumber } from "@web/core/utils/numbers";
import { escape } from "@web/core/utils/strings";
import { KpiCard } from "../components/kpi_card/kpi_card.esm";
import { DashboardChart } from "../components/chart/chart.esm";
import { ANALYSIS_PAGES, AnalysisPage } from "../analyses/analysis_page.esm";

const { DateTime } = luxon;

export const PERIODS = [
    { id: "this_month", label: _t("This month") },
    { id: "last_month", label: _t("Last month") },
    { id: "this_quarter", label: _t("This quarter") },
    { id: "this_year", label: _t("This year") },
    { id: "custom", label: _t("Custom") },
];

const COLORS = {
    blue: "#1f77b4",
    teal: "#17a2b8",
    green: "#28a745",
    orange: "#fd7e14",
    red: "#dc3545",
    grey: "#adb5bd",
    purple: "#714B67",
};

export function periodRange(period, today = DateTime.local()) {
    switch (period) {
        case "last_month": {
            const start = today.minus({ months: 1 }).startOf("month");
            return [start, start.endOf("month")];
        }
        case "this_quarter":
            return [today.startOf("quarter"), today.endOf("quarter")];
        case "this_year":
            return [today.startOf("year"), today.endOf("year")];
        default:
            return [today.startOf("month"), today.endOf("month")];
    }
}

function parseIds(value) {
    if (value === undefined || value === null || value === "") {
        return [];
    }
    return String(value)
        .split(",")
        .map((v) => parseInt(v, 10))
        .filter((v) => Number.isInteger(v) && v > 0);
}

export class ExecutiveDashboard extends Component {
    static template = "crm_executive_dashboard.ExecutiveDashboard";
    static components = { Layout, KpiCard, DashboardChart, AnalysisPage };
    static props = { "*": true };

    setup() {
        this.rpc = useService("rpc");
        this.action = useService("action");
        this.router = useService("router");
        this.user = useService("user");
        this.notification = useService("notification");
        this.orm = useService("orm");
        this.keepLast = new KeepLast();
        this.periods = PERIODS;
        this.pages = ANALYSIS_PAGES;
        this.state = useState({
            filters: this.initialFilters(),
            // "main" or an analysis of ANALYSIS_PAGES, loaded when opened
            page: (this.props.state && this.props.state.dashboardPage) || "main",
            data: null,
            loading: true,
            error: null,
        });
        useSetupAction({
            getLocalState: () => ({ dashboardFilters: { ...this.state.filters }, dashboardPage: this.state.page }),
        });
        onWillStart(() => this.load());
        onRendered(() => this.env.config.setDisplayName(_t("CRM Dashboard")));
    }

    // ------------------------------------------------------------
    // FILTERS (kept in the URL: a reload shows the same dashboard)
    // ------------------------------------------------------------

    initialFilters() {
        if (this.props.state && this.props.state.dashboardFilters) {
            return { ...this.props.state.dashboardFilters };
        }
        const action = this.props.action || {};
        const saved = Object.assign(
            {},
            this.router.current.hash,
            (action.context && action.context.params) || {},
            action.params || {}
        );
        const period = PERIODS.some((p) => p.id === saved.dash_period) ? saved.dash_period : "this_month";
        let [start, end] = periodRange(period);
        if (period === "custom") {
            const from = DateTime.fromISO(saved.dash_from || "");
            const to = DateTime.fromISO(saved.dash_to || "");
            if (from.isValid && to.isValid) {
                [start, end] = [from, to];
            }
        }
        return {
            period,
            dateFrom: start.toISODate(),
            dateTo: end.toISODate(),
            teamIds: parseIds(saved.dash_teams),
            userIds: parseIds(saved.dash_users),
        };
    }

    pushFiltersToUrl() {
        const f = this.state.filters;
        this.router.pushState({
            dash_period: f.period,
            dash_from: f.period === "custom" ? f.dateFrom : undefined,
            dash_to: f.period === "custom" ? f.dateTo : undefined,
            dash_teams: f.teamIds.length ? f.teamIds.join(",") : undefined,
            dash_users: f.userIds.length ? f.userIds.join(",") : undefined,
        });
    }

    onPeriodChange(ev) {
        const period = ev.target.value;
        this.state.filters.period = period;
        if (period !== "custom") {
            const [start, end] = periodRange(period);
            this.state.filters.dateFrom = start.toISODate();
            this.state.filters.dateTo = end.toISODate();
            this.load();
        }
    }

    onDateChange(which, ev) {
        const value = ev.target.value;
        if (!value) {
            return;
        }
        this.state.filters[which] = value;
        this.state.filters.period = "custom";
        this.load();
    }

    onTeamChange(ev) {
        const id = parseInt(ev.target.value, 10);
        this.state.filters.teamIds = id ? [id] : [];
        this.load();
    }

    onUserChange(ev) {
        const id = parseInt(ev.target.value, 10);
        this.state.filters.userIds = id ? [id] : [];
        this.load();
    }

    // ------------------------------------------------------------
    // DATA
    // ------------------------------------------------------------

    async load() {
        const f = this.state.filters;
        this.state.loading = true;
        try {
            const result = await this.keepLast.add(
                this.rpc("/crm/dashboard/data", {
                    date_from: f.dateFrom,
                    date_to: f.dateTo,
                    team_ids: f.teamIds,
                    user_ids: f.userIds,
                    // like the ORM's calls: the companies of the switcher, language, time zone
                    context: this.user.context,
                })
            );
            if (result.error) {
                this.state.error = result.error.message;
                this.state.data = null;
            } else {
                this.state.error = null;
                this.state.data = result;
            }
        } catch (error) {
            this.state.error = (error && error.message) || _t("The dashboard could not be loaded.");
            this.state.data = null;
        } finally {
            this.state.loading = false;
        }
        this.pushFiltersToUrl();
    }

    get exportUrl() {
        // the figures on the page: its period, filters and companies, as the server answered
        const data = this.state.data;
        const params = new URLSearchParams({
            date_from: data.period.date_from,
            date_to: data.period.date_to,
            company_ids: data.company_ids.join(","),
        });
        if (data.filters.team_ids.length) {
            params.set("team_ids", data.filters.team_ids.join(","));
        }
        if (data.filters.user_ids.length) {
            params.set("user_ids", data.filters.user_ids.join(","));
        }
        return `/crm/dashboard/export?${params.toString()}`;
    }

    onExport() {
        window.location.href = this.exportUrl;
    }

    async onSendDigestSample() {
        // the scheduled PDF digest of the last complete period, mailed to the current user now
        const result = await this.orm.call(
            "crm.dashboard.digest.subscription",
            "action_send_sample",
            []
        );
        this.notification.add(result.message, { type: "success" });
    }

    // ------------------------------------------------------------
    // CLICK-THROUGH: the leads behind a number, with its own domain
    // ------------------------------------------------------------

    openRecords(name, resModel, domain, views) {
        this.action.doAction({
            type: "ir.actions.act_window",
            name,
            res_model: resModel,
            views,
            domain,
            // an empty figure opens an empty list with a message, not Odoo's sample records: the
            // 17.0 action service reads ``useSampleModel`` on the action itself (the context key
            // alone is not read), the context keeps it for the views opened from the list
            useSampleModel: false,
            context: { active_test: false, create: false, useSampleModel: false },
            // markup: the views render the help with t-out (a plain string is shown escaped)
            help: markup(`<p class="o_view_nocontent_empty_folder">${escape(_t("Nothing behind this figure"))}</p>
                   <p>${escape(_t("No record matches this figure for the period and filters of the dashboard."))}</p>`),
            target: "current",
        });
    }

    openLeads(name, domain) {
        this.openRecords(name, "crm.lead", domain, [
            [false, "list"],
            [false, "kanban"],
            [false, "form"],
        ]);
    }

    openActivitiesDone(row) {
        // the rows of Odoo's Activities report behind the figure
        this.openRecords(_t("Activities done: %s", row.name), "crm.activity.report", row.activities_done_domain, [
            [false, "list"],
            [false, "pivot"],
            [false, "graph"],
        ]);
    }

    openLead(leadId) {
        this.action.doAction({
            type: "ir.actions.act_window",
            res_model: "crm.lead",
            res_id: leadId,
            views: [[false, "form"]],
            target: "current",
        });
    }

    openKpi(key) {
        const kpi = this.state.data.kpis[key];
        this.openLeads(this.kpiDefinitions.find((k) => k.key === key).title, kpi.domain);
    }

    openStage(index) {
        const stage = this.pipelineRows[index];
        if (stage) {
            this.openLeads(_t("Pipeline: %s", stage.name), stage.domain);
        }
    }

    openTrend(index, datasetIndex) {
        const bucket = this.state.data.trends.buckets[index];
        if (!bucket) {
            return;
        }
        // the won revenue bars and the won line open the deals won, the other line the leads
        if (datasetIndex === 1) {
            this.openLeads(_t("Leads created: %s", bucket.label), bucket.domains.leads);
        } else {
            this.openLeads(_t("Won: %s", bucket.label), bucket.domains.won);
        }
    }

    openForecast(index) {
        const month = this.state.data.forecast[index];
        if (month) {
            this.openLeads(_t("Expected to close: %s", month.label), month.domain);
        }
    }

    openTeam(index) {
        const team = this.state.data.team_performance[index];
        if (team) {
            this.openLeads(team.name, team.domain);
        }
    }

    openAiFigure(key) {
        const labels = {
            high: _t("Quality score 70 and above"),
            medium: _t("Quality score 40 to 69"),
            low: _t("Quality score below 40"),
            closed_high: _t("Quality score 70 and above, won or lost"),
            closed_low: _t("Quality score below 40, won or lost"),
            completed: _t("AI enrichment completed"),
            pending: _t("AI enrichment pending"),
            failed: _t("AI enrichment failed"),
        };
        this.openLeads(labels[key], this.state.data.ai_insights.domains[key]);
    }

    // ------------------------------------------------------------
    // FORMATTING AND CHART DATA
    // ------------------------------------------------------------

    get currency() {
        return this.state.data.currency;
    }

    money(value, compact = true) {
        const c = this.currency;
        const number = compact ? humanNumber(value, { decimals: 1 }) : null;
        if (!compact) {
            return formatCurrency(value, c.id, { digits: [0, 0] });
        }
        return c.position === "after" ? `${number} ${c.symbol}` : `${c.symbol} ${number}`;
    }

    get kpiDefinitions() {
        return [
            { key: "won_revenue", title: _t("Won revenue"), format: "money" },
            { key: "pipeline_value", title: _t("Open pipeline"), format: "money" },
            { key: "weighted_pipeline", title: _t("Weighted pipeline"), format: "money" },
            { key: "avg_deal_size", title: _t("Average deal"), format: "money" },
            { key: "total_leads", title: _t("Leads created"), format: "int" },
            { key: "total_opportunities", title: _t("Opportunities created"), format: "int" },
            { key: "won_opportunities", title: _t("Won"), format: "int" },
            { key: "lost_opportunities", title: _t("Lost"), format: "int", lowerIsBetter: true },
            { key: "conversion_rate", title: _t("Lead to opportunity"), format: "pct" },
            { key: "win_rate", title: _t("Win rate"), format: "pct" },
            { key: "avg_sales_cycle_days", title: _t("Sales cycle"), format: "days", lowerIsBetter: true },
        ];
    }

    formatKpi(format, value) {
        switch (format) {
            case "money":
                return this.money(value);
            case "pct":
                return `${value.toFixed(1)} %`;
            case "days":
                return _t("%s days", value.toFixed(1));
            default:
                // counts: whole numbers, compact from a thousand on (43.3k)
                return Math.abs(value) < 1000
                    ? String(Math.round(value))
                    : humanNumber(value, { decimals: 1 });
        }
    }

    get kpiCards() {
        const kpis = this.state.data.kpis;
        return this.kpiDefinitions.map((def) => {
            const kpi = kpis[def.key];
            const isRate = def.format === "pct";
            return {
                ...def,
                definition: this.state.data.definitions[def.key],
                value: this.formatKpi(def.format, kpi.value),
                previous: this.formatKpi(def.format, kpi.previous),
                // rates change in points, other figures in %
                change: isRate ? (kpi.previous || kpi.value ? kpi.delta : null) : kpi.change,
                unit: isRate ? " pts" : "%",
            };
        });
    }

    get periodLabel() {
        const p = this.state.data.period;
        const fmt = (d) => DateTime.fromISO(d).toLocaleString(DateTime.DATE_MED);
        const compared = {
            month: _t("the previous month"),
            quarter: _t("the previous quarter"),
            year: _t("the previous year"),
            days: _t("the same number of days before"),
        }[p.comparison];
        return _t("%(from)s – %(to)s, compared with %(compared)s: %(pfrom)s – %(pto)s", {
            compared,
            from: fmt(p.date_from),
            to: fmt(p.date_to),
            pfrom: fmt(p.previous_from),
            pto: fmt(p.previous_to),
        });
    }

    get pipelineRows() {
        return this.state.data.pipeline;
    }

    get pipelineChart() {
        const rows = this.pipelineRows;
        return {
            labels: rows.map((r) => `${r.name} (${r.count})`),
            datasets: [
                { label: _t("Expected revenue"), data: rows.map((r) => r.expected_revenue), backgroundColor: COLORS.teal },
                { label: _t("Weighted revenue"), data: rows.map((r) => r.weighted_revenue), backgroundColor: COLORS.purple },
            ],
        };
    }

    get moneyAxisOptions() {
        return {
            plugins: {
                legend: { position: "bottom" },
                tooltip: {
                    callbacks: {
                        label: (ctx) => `${ctx.dataset.label}: ${this.money(ctx.parsed.y ?? ctx.parsed, false)}`,
                    },
                },
            },
            scales: {
                x: { grid: { display: false } },
                y: { beginAtZero: true, ticks: { callback: (v) => humanNumber(v, { decimals: 1 }) } },
            },
        };
    }

    get trendChart() {
        const buckets = this.state.data.trends.buckets;
        return {
            labels: buckets.map((b) => b.label),
            datasets: [
                {
                    type: "bar",
                    label: _t("Won revenue"),
                    data: buckets.map((b) => b.revenue),
                    backgroundColor: COLORS.green,
                    yAxisID: "y",
                    order: 2,
                },
                {
                    type: "line",
                    label: _t("Leads created"),
                    data: buckets.map((b) => b.leads),
                    borderColor: COLORS.blue,
                    backgroundColor: COLORS.blue,
                    yAxisID: "y1",
                    tension: 0.3,
                    order: 1,
                },
                {
                    type: "line",
                    label: _t("Won"),
                    data: buckets.map((b) => b.won),
                    borderColor: COLORS.orange,
                    backgroundColor: COLORS.orange,
                    yAxisID: "y1",
                    tension: 0.3,
                    order: 0,
                },
            ],
        };
    }

    get trendOptions() {
        return {
            interaction: { mode: "index", intersect: false },
            plugins: {
                legend: { position: "bottom" },
                tooltip: {
                    callbacks: {
                        label: (ctx) =>
                            ctx.dataset.yAxisID === "y"
                                ? `${ctx.dataset.label}: ${this.money(ctx.parsed.y, false)}`
                                : `${ctx.dataset.label}: ${ctx.parsed.y}`,
                    },
                },
            },
            scales: {
                x: { grid: { display: false } },
                y: {
                    beginAtZero: true,
                    position: "left",
                    title: { display: true, text: _t("Revenue (%s)", this.currency.name) },
                    ticks: { callback: (v) => humanNumber(v, { decimals: 1 }) },
                },
                y1: {
                    beginAtZero: true,
                    position: "right",
                    grid: { drawOnChartArea: false },
                    title: { display: true, text: _t("Count") },
                    ticks: { precision: 0 },
                },
            },
        };
    }

    get forecastChart() {
        const months = this.state.data.forecast;
        return {
            labels: months.map((m) => m.label),
            datasets: [
                { label: _t("Worst case (≥ 70 %)"), data: months.map((m) => m.worst_case), backgroundColor: COLORS.grey },
                { label: _t("Weighted"), data: months.map((m) => m.weighted), backgroundColor: COLORS.purple },
                { label: _t("Best case"), data: months.map((m) => m.best_case), backgroundColor: COLORS.teal },
            ],
        };
    }

    get teamChart() {
        const teams = this.state.data.team_performance;
        return {
            labels: teams.map((t) => t.name),
            datasets: [{ label: _t("Won revenue"), data: teams.map((t) => t.revenue), backgroundColor: COLORS.green }],
        };
    }

    get teamOptions() {
        const options = this.moneyAxisOptions;
        options.indexAxis = "y";
        options.plugins.legend = { display: false };
        options.plugins.tooltip.callbacks.label = (ctx) => {
            const team = this.state.data.team_performance[ctx.dataIndex];
            return [
                `${_t("Won revenue")}: ${this.money(team.revenue, false)}`,
                `${_t("Won / lost")}: ${team.won} / ${team.lost}`,
                `${_t("Win rate")}: ${team.win_rate.toFixed(1)} %`,
            ];
        };
        options.scales = {
            x: { beginAtZero: true, ticks: { callback: (v) => humanNumber(v, { decimals: 1 }) } },
            y: { grid: { display: false } },
        };
        return options;
    }

    get aiChart() {
        const dist = this.state.data.ai_insights.ai_score_distribution;
        return {
            labels: [_t("High (70+)"), _t("Medium (40-69)"), _t("Low (<40)")],
            datasets: [
                {
                    data: [dist.high, dist.medium, dist.low],
                    backgroundColor: [COLORS.green, COLORS.orange, COLORS.red],
                },
            ],
        };
    }

    get aiOptions() {
        return { plugins: { legend: { position: "bottom" } }, cutout: "60%" };
    }

    onAiChartClick(index) {
        this.openAiFigure(["high", "medium", "low"][index]);
    }

    get hasTeams() {
        return this.state.data.team_performance.length > 0;
    }

    get selectedTeam() {
        return this.state.filters.teamIds[0] || 0;
    }

    get selectedUser() {
        return this.state.filters.userIds[0] || 0;
    }
}

registry.category("actions").add("crm_executive_dashboard.dashboard", ExecutiveDashboard);
