{
    "name": "CRM Executive Dashboard",
    "version": "17.0.1.0.0",
    "summary": "The CRM page a sales leader opens every morning: KPIs, pipeline, trends, teams, "
    "salespeople, forecast and AI insights, every number clickable down to its leads",
    "category": "Sales/CRM",
    "author": "AI Sales Suite",
    "website": "https://github.com/ai-sales-suite/crm-ai",
    "license": "LGPL-3",
    "depends": ["crm", "sales_team", "web", "llm_lead_scoring"],
    "data": [
        "views/crm_executive_dashboard_views.xml",
    ],
    "assets": {
        "web.assets_backend": ["crm_executive_dashboard/static/src/**/*"],
        "web.assets_tests": ["crm_executive_dashboard/static/tests/tours/**/*"],
    },
    "images": ["static/description/dashboard.png"],
    "uninstall_hook": "uninstall_hook",
    "installable": True,
    "application": False,
    "development_status": "Beta",
}
