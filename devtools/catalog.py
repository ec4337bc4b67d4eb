"""Every Cloud Function of the project: (name, source file, trigger).

The dev server mounts each at /<name>; cloudbuild.yaml deploys each (a test
keeps the two in step with this table and with the files in functions/).
"""
FUNCTIONS: list[tuple[str, str, str]] = [
    ("users", "functions/users.py", "http"),
    ("cmsPages", "functions/cms_pages.py", "http"),
    ("navLinks", "functions/nav_links.py", "http"),
    ("pricingPlans", "functions/pricing_plans.py", "http"),
    ("knowledge", "functions/knowledge.py", "http"),
    ("media", "functions/media.py", "http"),
]
