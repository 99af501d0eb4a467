"""One error hierarchy. Every refusal a user can meet carries a locale key that channels translate."""

from __future__ import annotations

from typing import Any


class ShopError(Exception):
    """A refusal that is the user's or admin's to read: never a bug.

    ``key`` is a gettext message id (the channels translate it); ``params`` fill its placeholders.
    """

    key = "error-generic"

    def __init__(self, message: str = "", **params: Any) -> None:
        self.params = params
        super().__init__(message or self.key)


class NotFound(ShopError):
    key = "error-not-found"


class ProductNotFound(NotFound):
    key = "error-product-not-found"


class OrderNotFound(NotFound):
    key = "error-order-not-found"


class ProductUnavailable(ShopError):
    """The product exists but is switched off."""

    key = "error-product-unavailable"


class OutOfStock(ShopError):
    key = "error-out-of-stock"


class QuantityOutOfRange(ShopError):
    key = "error-quantity-out-of-range"


class LimitExceeded(ShopError):
    """The buyer's own purchase limit for this product within its rolling window."""

    key = "error-user-limit"


class DailyLimitReached(ShopError):
    """The product's sales for today are used up."""

    key = "error-daily-limit"


class PhoneRequired(ShopError):
    key = "error-phone-required"


class UserBlocklisted(ShopError):
    key = "error-user-blocklisted"


class ReservationExpired(ShopError):
    key = "error-reservation-expired"


class InvalidOrderState(ShopError):
    """The order is not in a state that allows this action (e.g. paying a cancelled order twice)."""

    key = "error-order-state"


class CurrencyNotAccepted(ShopError):
    key = "error-currency"


class InvalidInput(ShopError):
    """A value that fails validation (a name too long, a negative price, a malformed file...)."""

    key = "error-invalid-input"


class VaultError(ShopError):
    """A ciphertext that cannot be opened: wrong key, unknown key id, or a tampered row."""

    key = "error-vault"


class IntegrityViolation(RuntimeError):
    """An invariant check failed inside a transaction. This is a bug, never a user's fault; the
    transaction is rolled back."""
