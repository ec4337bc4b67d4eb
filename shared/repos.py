"""One repository per collection (see shared.db.Repo); import the one you need."""
from shared import models as m
from shared.db import Repo

users = Repo(m.User)
deployments = Repo(m.Deployment)
subscriptions = Repo(m.Subscription)
plugin_configs = Repo(m.PluginConfig)
skill_configs = Repo(m.SkillConfig)
api_keys = Repo(m.ApiKey)
deploy_jobs = Repo(m.DeployJob)
cost_snapshots = Repo(m.CostSnapshot)
openrouter_activity = Repo(m.OpenrouterActivity)
media = Repo(m.Media)
knowledge = Repo(m.Knowledge)
pricing_plans = Repo(m.PricingPlan)
cms_pages = Repo(m.CmsPage)
nav_links = Repo(m.NavLink)
