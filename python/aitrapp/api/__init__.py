"""The FastAPI control plane: ``create_app()`` builds it, ``aitrapp serve`` runs it."""

from aitrapp.api.app import create_app

__all__ = ["create_app"]
