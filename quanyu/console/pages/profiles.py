"""The console's profiles pages."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
