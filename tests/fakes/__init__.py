"""Test doubles that speak real HTTP: `provider_server.FakeProviderServer`, one fake module per provider."""
