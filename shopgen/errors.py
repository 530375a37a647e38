"""Errors a user can fix. The CLI prints them as one line and exits 2 (1 for a failed validation)."""


class ShopgenError(Exception):
    """Bad input or usage: what went wrong, where, and how to fix it, in one sentence."""

    exit_code = 2


class SchemaError(ShopgenError):
    """A schema file is malformed, or data does not fit the schema."""


class BundleError(ShopgenError):
    """A model bundle is missing, incomplete or has been tampered with."""


class ValidationFailed(ShopgenError):
    """Rows could not be made to pass the schema's expectations."""

    exit_code = 1
