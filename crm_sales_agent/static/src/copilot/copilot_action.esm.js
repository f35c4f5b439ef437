/** @odoo-module **/

import { Component } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { Layout } from "@web/search/layout";
import { CopilotPanel } from "./copilot_panel.esm";

/**
 * The copilot on a page of its own (menu CRM > Copilot, and the lead form's "Ask the copilot"
 * button, whose context ``copilot_lead_id`` / ``copilot_lead_name`` makes that lead the
 * subject of the conversation).
 */
export class CopilotAction extends Component {
    static template = "crm_sales_agent.CopilotAction";
    static components = { CopilotPanel, Layout };
    static props = { "*": true };

    setup() {
        const copilot = useService("crm_copilot");
        const context = (this.props.action && this.props.action.context) || {};
        if (context.copilot_lead_id) {
            copilot.setLead({ id: context.copilot_lead_id, name: context.copilot_lead_name || "" });
        }
        copilot.conversation.open = false; // one panel at a time
    }
}

registry.category("actions").add("crm_sales_agent.copilot", CopilotAction);
