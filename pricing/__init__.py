"""Offers, GPU names, prices and the searchable catalog."""
