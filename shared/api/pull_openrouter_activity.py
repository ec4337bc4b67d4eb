"""`pullOpenrouterActivity` (Cloud Scheduler, every 6 hours, or an admin on demand): starts a run
pulling OpenRouter activity per day and model; the same routes as `pullCosts` (shared/api/pull_costs.py)."""
from shared.api.pull_costs import pull_api

api = pull_api("pullOpenrouterActivity", "activity", "Pull OpenRouter activity per day and model")
