"""Thinkers write short passages ("thoughts") about a query before it is embedded."""

from o1_retriever.thinkers.base import SamplingConfig, Thinker, UNIFIED_SAMPLING, clean_thought

__all__ = ["SamplingConfig", "Thinker", "UNIFIED_SAMPLING", "clean_thought"]
