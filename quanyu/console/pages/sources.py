"""The console's sources pages."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
