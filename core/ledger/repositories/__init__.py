"""Typed repositories, one per table, grouped by concern; reached through a `UnitOfWork`."""
