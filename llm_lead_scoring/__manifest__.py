{
    "name": "LLM Lead Scoring",
    "version": "17.0.1.0.0",
    "summary": "AI scores on every lead (completeness, clarity, engagement) through a resilient "
    "multi-provider LLM layer; rule-based out of the box",
    "category": "Sales/CRM",
    "author": "AI Sales Suite",
    "license": "LGPL-3",
    "depends": ["crm", "mail"],
    "data": [
        "security/ir.model.access.csv",
        "security/llm_lead_scoring_security.xml",
        "data/ir_cron_data.xml",
        "views/crm_lead_views.xml",
        "views/llm_provider_views.xml",
        "views/llm_scoring_model_views.xml",
        "views/res_config_settings_views.xml",
    ],
    "demo": ["demo/crm_lead_demo.xml"],
    "post_init_hook": "post_init_hook",
    "installable": True,
    "application": False,
    "development_status": "Beta",
}
