"""Test doubles that speak real HTTP: `provider_server.FakeProviderServer`."""
