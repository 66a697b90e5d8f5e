"""Test doubles that sit at the true edge of the system (broker servers, Bot API, ...)."""
