"""Workshops: an instructor-led room on one shared live cluster, joined by code, with polls."""
