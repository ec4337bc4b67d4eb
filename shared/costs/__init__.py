"""Costs domain: scheduled pulls of provider costs (fan-out over Cloud Tasks) and their read models."""
