def post_init_hook(env):
    """Score the leads that already exist by rules, so that nothing starts empty."""
    env["crm.lead"]._ai_score_all_by_rules()
