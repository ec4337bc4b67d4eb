"""`pullCosts` (Cloud Scheduler, every 6 hours, or an admin on demand): starts a run pulling the
OpenRouter balance, OpenAI spend and the GCP estimate; the routes are those of every cost pull
(shared/api/cost_pulls.py)."""
from shared.api.cost_pulls import cost_pull_api

api = cost_pull_api("pullCosts", "costs", "Pull OpenRouter balance, OpenAI spend and the GCP estimate")
