/** @odoo-module **/

import { Component } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";

export class KpiCard extends Component {
    static template = "crm_executive_dashboard.KpiCard";
    static props = {
        name: String,
        title: String,
        // what the figure counts (one line, shown as the tooltip)
        definition: { type: String, optional: true },
        value: String,
        previous: String,
        change: { optional: true },
        // for figures where going down is good news (sales cycle)
        lowerIsBetter: { type: Boolean, optional: true },
        unit: { type: String, optional: true },
        onClick: { type: Function, optional: true },
    };

    get trendClass() {
        const change = this.props.change;
        if (change === null || change === undefined || change === 0) {
            return "text-muted";
        }
        const good = this.props.lowerIsBetter ? change < 0 : change > 0;
        return good ? "text-success" : "text-danger";
    }

    get trendIcon() {
        const change = this.props.change;
        if (change === null || change === undefined || change === 0) {
            return "fa-minus";
        }
        return change > 0 ? "fa-arrow-up" : "fa-arrow-down";
    }

    get changeLabel() {
        const change = this.props.change;
        if (change === null || change === undefined) {
            return _t("no data before");
        }
        const sign = change > 0 ? "+" : "";
        return `${sign}${change.toFixed(1)}${this.props.unit || "%"}`;
    }
}
