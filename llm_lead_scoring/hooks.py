def post_init_hook(env):
    """Queue the active leads that already exist: the scoring cron scores them in batches."""
    env["crm.lead"]._ai_queue_existing()
