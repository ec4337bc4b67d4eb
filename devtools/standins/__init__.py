"""Wrappers that start the local stand-ins of Google/Stripe services bound to 127.0.0.1."""
