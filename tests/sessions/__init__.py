"""Integration tests of whole sessions: the real runtime, the trading kernel, PostgreSQL."""
