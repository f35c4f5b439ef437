/** @odoo-module **/

import { Component, onWillStart, onWillUpdateProps, useState } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { useService } from "@web/core/utils/hooks";
import { KeepLast } from "@web/core/utils/concurrency";
import { browser } from "@web/core/browser/browser";
import { DashboardChart } from "../components/chart/chart.esm";

export const ANALYSIS_PAGES = [
    { id: "funnel", label: _t("Conversion funnel") },
    { id: "bottlenecks", label: _t("Bottlenecks") },
    { id: "winloss", label: _t("Win/loss") },
    { id: "roi", label: _t("Source and campaign ROI") },
];

const SEGMENTS = {
    team_id: _t("Team"),
    user_id: _t("Salesperson"),
    source_id: _t("Source"),
    medium_id: _t("Medium"),
    campaign_id: _t("Campaign"),
    country_id: _t("Country"),
    revenue_band: _t("Revenue band"),
    ai_band: _t("AI band"),
    stage_id: _t("Stage where lost"),
};

/**
 * One analysis page of the dashboard (funnel, bottlenecks, win/loss, ROI), loaded when it is
 * opened from ``/crm/dashboard/analysis/<name>`` with the page's period, filters and companies.
 * Every figure opens its leads with the domain the server built for it.
 */
export class AnalysisPage extends Component {
    static template = "crm_executive_dashboard.AnalysisPage";
    static components = { DashboardChart };
    static props = {
        name: String,
        dateFrom: String,
        dateTo: String,
        teamIds: Array,
        userIds: Array,
        openLeads: Function,
    };

    setup() {
        this.user = useService("user");
        this.keepLast = new KeepLast();
        this.segments = SEGMENTS;
        this.state = useState({
            data: null,
            loading: true,
            error: null,
            funnelBy: "team_id",
            winBy: "source_id",
            lostBy: "team_id",
            roiBy: "source_id",
        });
        onWillStart(() => this.load(this.props));
        onWillUpdateProps((next) => {
            if (this.query(next) !== this.query(this.props)) {
                this.load(next);
            }
        });
    }

    query(props) {
        const params = new URLSearchParams({
            date_from: props.dateFrom,
            date_to: props.dateTo,
            company_ids: (this.user.context.allowed_company_ids || []).join(","),
        });
        if (props.teamIds.length) {
            params.set("team_ids", props.teamIds.join(","));
        }
        if (props.userIds.length) {
            params.set("user_ids", props.userIds.join(","));
        }
        return params.toString();
    }

    async load(props) {
        this.state.loading = true;
        try {
            const response = await this.keepLast.add(
                browser.fetch(`/crm/dashboard/analysis/${props.name}?${this.query(props)}`)
            );
            const result = await response.json();
            if (!response.ok || result.error) {
                this.state.error = (result.error && result.error.message) || _t("The analysis could not be loaded.");
                this.state.data = null;
            } else {
                this.state.error = null;
                this.state.data = result;
            }
        } catch {
            this.state.error = _t("The analysis could not be loaded.");
            this.state.data = null;
        } finally {
            this.state.loading = false;
        }
    }

    get exportUrl() {
        return `/crm/dashboard/analysis/${this.props.name}/export?${this.query(this.props)}`;
    }

    onExport() {
        browser.location.href = this.exportUrl;
    }

    open(title, domain) {
        if (domain) {
            this.props.openLeads(title, domain);
        }
    }

    format(value, digits = 1) {
        if (value === null || value === undefined) {
            return "–";
        }
        return Number(value).toLocaleString(undefined, { maximumFractionDigits: digits });
    }

    // ------------------------------------------------------------
    // CHARTS
    // ------------------------------------------------------------

    get funnelChart() {
        const rows = this.state.data.rows;
        return {
            labels: rows.map((row) => row.stage),
            datasets: [{ label: _t("Reached"), data: rows.map((row) => row.reached), backgroundColor: "#714B67" }],
        };
    }

    openFunnelStage(index) {
        const row = this.state.data.rows[index];
        this.open(_t("Reached %s", row.stage), row.domain);
    }

    get funnelSegments() {
        return this.state.data.breakdowns[this.state.funnelBy];
    }

    get bottleneckChart() {
        const rows = this.state.data.rows;
        return {
            labels: rows.map((row) => row.stage),
            datasets: [
                { label: _t("Median"), data: rows.map((r) => r.median_days), backgroundColor: "#17a2b8" },
                { label: _t("75th percentile"), data: rows.map((r) => r.p75_days), backgroundColor: "#fd7e14" },
                { label: _t("90th percentile"), data: rows.map((r) => r.p90_days), backgroundColor: "#dc3545" },
            ],
        };
    }

    openBottleneckStage(index) {
        const row = this.state.data.rows[index];
        this.open(_t("Won deals behind the norm of %s", row.stage), row.domain);
    }

    get trendChart() {
        const trend = this.state.data.trend;
        return {
            labels: trend.map((bucket) => bucket.label),
            datasets: [
                { label: _t("Won"), data: trend.map((b) => b.won), backgroundColor: "#28a745" },
                { label: _t("Lost"), data: trend.map((b) => b.lost), backgroundColor: "#dc3545" },
            ],
        };
    }

    openTrend(index, datasetIndex) {
        const bucket = this.state.data.trend[index];
        const key = datasetIndex === 1 ? "lost" : "won";
        this.open(`${key === "won" ? _t("Won") : _t("Lost")}: ${bucket.label}`, bucket.domains[key]);
    }

    get winRows() {
        return this.state.data.segments[this.state.winBy];
    }

    get winChart() {
        const rows = this.winRows.slice(0, 15);
        return {
            labels: rows.map((row) => row.name),
            datasets: [{ label: _t("Win rate %"), data: rows.map((row) => row.win_rate), backgroundColor: "#1f77b4" }],
        };
    }

    openWinSegment(index) {
        const row = this.winRows[index];
        this.open(_t("Closed deals: %s", row.name), row.domain);
    }

    get lostRows() {
        return this.state.data.lost_reasons[this.state.lostBy];
    }

    get roiRows() {
        return this.state.data.rows.filter((row) => row.dimension === this.state.roiBy);
    }

    get roiChart() {
        const rows = this.roiRows.slice(0, 15);
        return {
            labels: rows.map((row) => row.name),
            datasets: [
                { label: _t("Won revenue"), data: rows.map((r) => r.revenue), backgroundColor: "#28a745" },
                { label: _t("Cost"), data: rows.map((r) => r.cost || 0), backgroundColor: "#dc3545" },
            ],
        };
    }

    openRoi(index) {
        const row = this.roiRows[index];
        this.open(_t("Leads: %s", row.name), row.domain);
    }
}
