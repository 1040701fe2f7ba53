"""Identity resolution (OneID): identifier rules, the identity graph, merges and splits."""
