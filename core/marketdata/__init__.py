"""Bars and bar feeds: replay (CSV / Parquet), synthetic sessions, live adapters."""
