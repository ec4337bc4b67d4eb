"""One module per HTTP function: its routes, input models and handlers."""
