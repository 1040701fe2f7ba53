"""Outbox and signed webhook delivery (Standard Webhooks), shared by audience pushes
and consent propagation."""
