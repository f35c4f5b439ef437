/** @odoo-module **/

import { Component, onMounted, onWillStart, onWillUnmount, onWillUpdateProps, useRef } from "@odoo/owl";
import { loadBundle } from "@web/core/assets";

/**
 * A Chart.js (v4, the one Odoo 17 ships in web.chartjs_lib) chart.
 * The chart is destroyed when the component unmounts and rebuilt when its data change.
 */
export class DashboardChart extends Component {
    static template = "crm_executive_dashboard.DashboardChart";
    static props = {
        type: String,
        data: Object,
        options: { type: Object, optional: true },
        onClick: { type: Function, optional: true },
        height: { type: Number, optional: true },
        name: { type: String, optional: true },
    };
    static defaultProps = { height: 260 };

    setup() {
        this.canvasRef = useRef("canvas");
        this.chart = null;
        onWillStart(() => loadBundle("web.chartjs_lib"));
        onMounted(() => this.renderChart(this.props));
        onWillUpdateProps((nextProps) => {
            // the DOM is already there: rebuild once the props are the new ones
            Promise.resolve().then(() => this.renderChart(nextProps));
        });
        onWillUnmount(() => this.destroyChart());
    }

    destroyChart() {
        if (this.chart) {
            this.chart.destroy();
            this.chart = null;
        }
    }

    renderChart(props) {
        if (!this.canvasRef.el) {
            return;
        }
        this.destroyChart();
        const onClick = props.onClick;
        const options = Object.assign(
            {
                responsive: true,
                maintainAspectRatio: false,
                animation: false,
                onClick: (event, elements, chart) => {
                    // the element under the pointer first (a line's point, a bar), else the
                    // first element of the interaction mode (a whole index of the trends)
                    const hits = chart.getElementsAtEventForMode(event, "nearest", { intersect: true }, false);
                    const element = hits[0] || elements[0];
                    if (onClick && element) {
                        onClick(element.index, element.datasetIndex);
                    }
                },
                onHover: (event, elements) => {
                    event.native.target.style.cursor = onClick && elements.length ? "pointer" : "default";
                },
            },
            props.options || {}
        );
        // eslint-disable-next-line no-undef
        this.chart = new Chart(this.canvasRef.el, {
            type: props.type,
            data: props.data,
            options,
        });
    }
}
