"""Kubernetes operator for sovereign AI factories."""
