"""The fixtures every client test may use: an in-memory API (`fake_api.FakeApi`), a client on it, and the
sleeps it asked for."""

from fake_api import api, client, sleeps

__all__ = ["api", "client", "sleeps"]
