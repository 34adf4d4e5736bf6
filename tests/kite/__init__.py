"""Tests of the Kite adapter against a fake Kite on 127.0.0.1 (REST + websocket)."""
