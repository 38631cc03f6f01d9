"""keysvc: field-level encryption and tokenization key service."""

__version__ = "0.1.0"
