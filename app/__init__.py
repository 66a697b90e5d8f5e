"""Centaur command line."""
