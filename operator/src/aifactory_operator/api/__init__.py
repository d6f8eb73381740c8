"""The custom resources' API: pydantic models that are the single source of truth for the CRDs."""
