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


class OptionError(ShopgenError):
    """An option has a value it cannot take. Its message names the option as Python and YAML spell it
    (`text_workers`); `flag_message()` spells it as the command line does (`--text-workers`)."""

    def __init__(self, option: str, detail: str) -> None:
        super().__init__(f"{option} {detail}")
        self.option, self.detail = option, detail

    def flag_message(self) -> str:
        return f"--{self.option.replace('_', '-')} {self.detail}"
