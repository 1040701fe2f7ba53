"""Unified profiles: the read side of OneID — identities, surviving traits, timeline, history."""
