"""Billing: Stripe customers, Checkout/Portal sessions, the free trial, webhook sync with an
exactly-once event ledger, and reconciliation. HTTP handlers live in shared/api/billing*.py."""
