"""Engines, pools, dialect specifics, reflection and result conversion."""
