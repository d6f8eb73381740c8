"""Sovereignty rules as pure functions, one module per rule family."""
