"""Ingestion and Python assets: landing zone → warehouse."""
