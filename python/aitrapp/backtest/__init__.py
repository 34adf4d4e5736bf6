"""Backtests: each trading day of your data as its own session, and the multi-day report."""
