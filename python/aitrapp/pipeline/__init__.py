"""The trading pipeline: tick -> decision -> orders -> fills -> trade, durable and observable."""
