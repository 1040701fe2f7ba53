"""ISVs, tenants (brand groups), brands, sources, API keys and scopes, audit log."""
