"""Spend caps: monthly budgets per account and per deployment, alerts at 50/80/100 %, and the owner's
chosen action at 100 % (notify, stop the bots, cap the OpenRouter key), lifted by a raise or a new month."""
