"""Speculative decoding: proposers (prompt lookup, draft model) and verification."""
