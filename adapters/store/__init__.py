"""Durable stores behind the router's store interface."""
