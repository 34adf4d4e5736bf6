"""Every router, combined in one place."""

from fastapi import APIRouter

from aitrapp.api.routes import control, events, health, metrics, reads, state

api_router = APIRouter()
for module in (health, state, control, reads, metrics, events):
    api_router.include_router(module.router)

__all__ = ["api_router"]
