"""Conversions and imports. Toolkits are imported inside functions, never at module level
of the registry, so the app starts fast and a missing toolkit is a sentence."""
