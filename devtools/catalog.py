"""Every Cloud Function of the project: (name, source file, trigger).

The dev server mounts each at /<name>; cloudbuild.yaml deploys each (a test
keeps the two in step with this table and with the files in functions/).
"""
FUNCTIONS: list[tuple[str, str, str]] = [
    ("users", "functions/users.py", "http"),
    ("cmsPages", "functions/cms_pages.py", "http"),
    ("navLinks", "functions/nav_links.py", "http"),
    ("pricingPlans", "functions/pricing_plans.py", "http"),
    # deployments
    ("deployments", "functions/deployments.py", "http"),
    ("deployWorker", "functions/deploy_worker.py", "http"),
    ("provisioningEvents", "functions/provisioning_events.py", "pubsub"),
    ("pluginConfigs", "functions/plugin_configs.py", "http"),
    ("skillConfigs", "functions/skill_configs.py", "http"),
    ("apiKeys", "functions/api_keys.py", "http"),
]
