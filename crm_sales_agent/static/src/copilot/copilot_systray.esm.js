/** @odoo-module **/

import { Component, onWillStart, useState } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { CopilotPanel } from "./copilot_panel.esm";

/** The systray button that shows or hides the copilot panel (CRM users only). */
export class CopilotSystray extends Component {
    static template = "crm_sales_agent.CopilotSystray";
    static props = {};

    setup() {
        this.user = useService("user");
        this.conversation = useState(useService("crm_copilot").conversation);
        this.state = useState({ allowed: false });
        onWillStart(async () => {
            this.state.allowed = await this.user.hasGroup("sales_team.group_sale_salesman");
        });
    }

    toggle() {
        this.conversation.open = !this.conversation.open;
    }
}

/** The panel itself, over the right side of any screen (the whole width of a phone). */
export class CopilotOverlay extends Component {
    static template = "crm_sales_agent.CopilotOverlay";
    static components = { CopilotPanel };
    static props = {};

    setup() {
        this.conversation = useState(useService("crm_copilot").conversation);
    }

    close() {
        this.conversation.open = false;
    }
}

registry
    .category("systray")
    .add("crm_sales_agent.copilot", { Component: CopilotSystray }, { sequence: 30 });
registry.category("main_components").add("crm_sales_agent.CopilotOverlay", {
    Component: CopilotOverlay,
});
