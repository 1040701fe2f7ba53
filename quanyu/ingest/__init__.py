"""Tracking API (Segment spec), bulk import, tracking plans, validation, dead letters."""
