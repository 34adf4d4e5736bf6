"""Integration tests of the trading pipeline (issue 6): real runtime, paper broker, PostgreSQL."""
