"""pullbridge: provider webhooks in, one ordered, cursor-paged event log per tenant out."""

__all__ = ["__version__"]
__version__ = "0.1.0"
