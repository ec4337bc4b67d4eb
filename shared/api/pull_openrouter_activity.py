"""`pullOpenrouterActivity` (Cloud Scheduler, every 6 hours, or an admin on demand): starts a run
pulling OpenRouter activity per day and model; the routes are those of every cost pull (shared/api/cost_pulls.py)."""
from shared.api.cost_pulls import cost_pull_api

api = cost_pull_api("pullOpenrouterActivity", "activity", "Pull OpenRouter activity per day and model")
