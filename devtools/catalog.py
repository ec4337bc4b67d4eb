"""Every Cloud Function of the project: (name, source file, trigger).

The dev server mounts each at /<name>; cloudbuild.yaml deploys each (a test
keeps the two in step with this table and with the files in functions/).
"""
FUNCTIONS: list[tuple[str, str, str]] = [
    ("users", "functions/users.py", "http"),
    ("cmsPages", "functions/cms_pages.py", "http"),
    ("navLinks", "functions/nav_links.py", "http"),
    ("pricingPlans", "functions/pricing_plans.py", "http"),
    # costs
    ("costs", "functions/costs.py", "http"),
    ("pullCosts", "functions/pull_costs.py", "http"),
    ("pullOpenrouterActivity", "functions/pull_openrouter_activity.py", "http"),
    ("costPullWorker", "functions/cost_pull_worker.py", "http"),
    # billing
    ("billing", "functions/billing.py", "http"),
    ("stripeWebhook", "functions/stripe_webhook.py", "http"),
    ("stripeEventWorker", "functions/stripe_event_worker.py", "http"),  # Cloud Tasks: the webhook's events
    ("billingReconcile", "functions/billing_reconcile.py", "http"),  # + Cloud Scheduler job (cloudbuild.yaml)
    ("knowledge", "functions/knowledge.py", "http"),
    ("knowledgeReembedWorker", "functions/knowledge_reembed_worker.py", "http"),  # Cloud Tasks (re-embedding)
    ("media", "functions/media.py", "http"),
    # deployments
    ("deployments", "functions/deployments.py", "http"),
    ("deployWorker", "functions/deploy_worker.py", "http"),
    ("provisioningEvents", "functions/provisioning_events.py", "pubsub"),
    ("pluginConfigs", "functions/plugin_configs.py", "http"),
    ("skillConfigs", "functions/skill_configs.py", "http"),
    ("apiKeys", "functions/api_keys.py", "http"),
    ("backups", "functions/backups.py", "http"),  # + Cloud Scheduler job for its cleanup (cloudbuild.yaml)
    # bot health, notifications and outgoing webhooks, the audit log
    ("healthCheck", "functions/health_check.py", "http"),  # + Cloud Scheduler job, every minute
    ("notifications", "functions/notifications.py", "http"),
    ("webhookWorker", "functions/webhook_worker.py", "http"),
    ("auditLog", "functions/audit_log.py", "http"),
]
