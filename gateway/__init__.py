"""Inbound webhook listener and mapping gateway."""
