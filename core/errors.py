"""One error hierarchy. Every refusal a user can meet carries a locale key that channels translate."""

from __future__ import annotations

from typing import Any


class ShopError(Exception):
    """A refusal that is the user's or admin's to read: never a bug.

    ``key`` is a gettext message id (the channels translate it); ``params`` fill its placeholders.
    """

    key = "error-generic"
    template = "the request was refused"

    def __init__(self, message: str = "", **params: Any) -> None:
        self.params = params
        super().__init__(message or self.template.format_map(_Blank(params)))


class _Blank(dict[str, Any]):
    def __missing__(self, name: str) -> str:
        return "?"


class NotFound(ShopError):
    key = "error-not-found"
    template = "not found"


class ProductNotFound(NotFound):
    key = "error-product-not-found"
    template = "no product {product_id}"


class OrderNotFound(NotFound):
    key = "error-order-not-found"
    template = "no order {ref}"


class ProductUnavailable(ShopError):
    """The product exists but is switched off."""

    key = "error-product-unavailable"
    template = "product {name} is not on sale"


class OutOfStock(ShopError):
    key = "error-out-of-stock"
    template = "not enough stock of {name} (available: {available})"


class QuantityOutOfRange(ShopError):
    key = "error-quantity-out-of-range"
    template = "quantity must be from {min} to {max}"


class LimitExceeded(ShopError):
    """The buyer's own purchase limit for this product within its rolling window."""

    key = "error-user-limit"
    template = "purchase limit reached: {limit} per {hours} h (remaining {remaining})"


class DailyLimitReached(ShopError):
    """The product's sales for today are used up."""

    key = "error-daily-limit"
    template = "today's sales limit of this product is reached (remaining {remaining})"


class PhoneRequired(ShopError):
    key = "error-phone-required"
    template = "share a phone number first"


class UserBlocklisted(ShopError):
    key = "error-user-blocklisted"
    template = "this account may not buy"


class TooManyPendingOrders(ShopError):
    """The buyer already holds the most unpaid reservations one buyer may hold at a time."""

    key = "error-too-many-pending"
    template = "{count} unpaid orders already hold stock: pay or cancel one first"


class ReservationExpired(ShopError):
    key = "error-reservation-expired"
    template = "the reservation of order {ref} has expired"


class InvalidOrderState(ShopError):
    """The order is not in a state that allows this action (e.g. paying a cancelled order twice)."""

    key = "error-order-state"
    template = "the order is {status}, which does not allow this"


class NotOrderOwner(ShopError):
    """Someone other than the buyer tries to pay an order (a forwarded invoice)."""

    key = "precheckout-not-owner"
    template = "order {ref} belongs to another buyer"


class InsufficientBalance(ShopError):
    """The buyer's shop balance (available commission) does not cover the order (nothing was spent)."""

    key = "error-balance-insufficient"
    template = "the balance does not cover order {ref}"


class CurrencyNotAccepted(ShopError):
    key = "error-currency"
    template = "this product is not sold in {currency}"


class InvalidInput(ShopError):
    """A value that fails validation (a name too long, a negative price, a malformed file...)."""

    key = "error-invalid-input"
    template = "invalid input"


class VaultError(ShopError):
    """A ciphertext that cannot be opened: wrong key, unknown key id, or a tampered row."""

    key = "error-vault"
    template = "a stored key could not be decrypted"


class IntegrityViolation(RuntimeError):
    """An invariant check failed inside a transaction. This is a bug, never a user's fault; the
    transaction is rolled back."""


class KeyRefused(InvalidInput):
    """A card key (or manual delivery content) holding a character that could make the key on screen
    differ from the key to type. ``reason`` is the importer's name for it."""

    reason = "invalid"

    @staticmethod
    def for_reason(reason: str) -> KeyRefused:
        cls = {"control": KeyHasControlCharacter, "bidi": KeyHasBidiControl}.get(reason, KeyRefused)
        return cls(field="key")


class KeyHasControlCharacter(KeyRefused):
    key = "error-key-control"
    template = "a key must not hold control characters"
    reason = "control"


class KeyHasBidiControl(KeyRefused):
    key = "error-key-bidi"
    template = "a key must not hold bidirectional formatting characters (they reorder what is shown)"
    reason = "bidi"


class DeliveryKindChangeRefused(ShopError):
    """A product's delivery kind cannot change while orders of it are open: their reserved keys (or the
    admin's pending manual delivery) belong to the old kind and would be stranded."""

    key = "error-kind-change-open-orders"
    template = (
        "{name} has {orders} open orders (pending or paid); change its delivery kind once they are "
        "delivered, expired, cancelled or refunded"
    )


class ImportAbandoned(ShopError):
    """The import stopped sending heartbeats long enough to be swept as abandoned (its staged keys were
    removed), so it must not publish what is left."""

    key = "error-import-abandoned"
    template = (
        "import #{import_id} was taken for abandoned (no heartbeat for too long) and stopped; "
        "nothing was added to stock: import the file again"
    )


class ImportIncomplete(ShopError):
    """Publishing found fewer (or more) staged keys than the import wrote: something removed them."""

    key = "error-import-incomplete"
    template = (
        "import #{import_id} staged {expected} keys but {staged} are left; nothing was added to stock: "
        "import the file again"
    )


class CategoryNotFound(NotFound):
    key = "error-category-not-found"
    template = "no category {category_id}"


class NotPermitted(ShopError):
    """An admin screen's action outside the role or the scope of whoever asked (never shown to buyers,
    who get the answer anyone gets for an unknown command)."""

    key = "admin-not-permitted"
    template = "not permitted for this role or scope"


class OwnerIsNotStaff(ShopError):
    """Owners come from the shop's settings: they cannot be added, changed or removed as staff."""

    key = "admin-staff-owner"
    template = "{who} is an owner (ADMIN_IDS)"


class BuyerNotFound(NotFound):
    """No buyer with this id in the shop (the back office's /user, /ban, /order by buyer)."""

    key = "admin-user-not-found"
    template = "no buyer {who}"


class UsernameNotKnown(NotFound):
    """No one in the shop was seen with this @username (a bot cannot ask Telegram who holds one: the shop
    knows a handle from the updates of the person using it)."""

    key = "admin-username-unknown"
    template = "no buyer seen as {who}"


class ManualAmountMismatch(InvalidInput):
    """A payment received outside the chat must be for exactly the order's amount (nothing is recorded)."""

    key = "admin-paid-amount-mismatch"
    template = "the amount differs from the order's {expected} {currency}"


class NotBannable(ShopError):
    """Owners are never banned; staff are taken off the staff first (a ban is for buyers)."""

    key = "admin-ban-staff"
    template = "{who} is an owner or on the staff: take them off the staff first (owners cannot be banned)"


class BroadcastNotFound(NotFound):
    key = "admin-broadcast-not-found"
    template = "no broadcast {broadcast_id}"


class BroadcastNotDraft(ShopError):
    """Confirming, editing or discarding a broadcast that is no longer a draft (a second tap)."""

    key = "admin-broadcast-not-draft"
    template = "broadcast {broadcast_id} is {state}, no longer a draft"


class BroadcastWithdrawn(ShopError):
    """A broadcast's message claimed for sending after the broadcast was cancelled: not sent."""

    key = "admin-broadcast-withdrawn"
    template = "broadcast {broadcast_id} was cancelled"


# ---------------------------------------------------------------- stock: uploads, voids and exports


class StockNotKept(InvalidInput):
    """Keys are imported, voided and exported only for unique-key products."""

    key = "error-stock-not-kept"
    template = "only unique-key products take imported stock (set a shared key instead)"


class ImportFileEmpty(InvalidInput):
    key = "error-import-empty"
    template = "the file holds no keys"


class ImportFileNotUtf8(InvalidInput):
    """A file checked as a whole (an upload in chat) that is not UTF-8 text: nothing of it is imported."""

    key = "error-import-not-utf8"
    template = "line {line} is not UTF-8 text: save the file as UTF-8 and send it again"


class ImportCsvMalformed(InvalidInput):
    key = "error-import-csv-malformed"
    template = "line {line} is not one well-quoted CSV record"


class ImportCsvColumns(InvalidInput):
    key = "error-import-csv-columns"
    template = "line {line} has {found} columns where the first line has {expected}"


class KeyNotInStock(NotFound):
    """No key of this value in the product's stock (nor sold): nothing to void."""

    key = "error-key-not-found"
    template = "product {product_id} has no such key"


class ImportBatchNotFound(NotFound):
    key = "error-batch-not-found"
    template = "product {product_id} has no keys from import #{import_id}"


class ExportAlreadySent(ShopError):
    """A confirmation of a key export is honoured once (and never one older than the last honoured)."""

    key = "error-export-used"
    template = "this export was confirmed already: ask again with /export"


class ExportTooLarge(ShopError):
    """An export bigger than the channel can send in one file: refused before anything is revealed (no claim,
    no audit row); the CLI writes any size to a file (``keyshop keys export``)."""

    key = "error-export-too-big"
    template = (
        "{count} keys of product {product_id} make {size} MB, more than {limit} MB: "
        "use keyshop keys export {product_id} FILE --yes"
    )


# ---------------------------------------------------------------- withdrawals (core.services.payouts)


class PayoutNotFound(NotFound):
    key = "payout-not-found"
    template = "no withdrawal request {payout_id}"


class PayoutRefused(ShopError):
    """A withdrawal the rules do not allow now (the /withdraw screen says which and why)."""

    key = "payout-refused"
    template = "no withdrawal of {currency} now"


class PayoutNotWithdrawable(PayoutRefused):
    """Stars with no ``STARS_PAYOUT_RATE``, or a currency that is not the shop's: spent, never withdrawn."""

    key = "payout-not-withdrawable"
    template = "commission in {currency} can be spent in the shop but not withdrawn"


class PayoutBelowMinimum(PayoutRefused):
    key = "payout-below-minimum"
    template = "the available {currency} balance pays less than the minimum withdrawal"


class PayoutAlreadyOpen(PayoutRefused):
    """One open request per currency: the next one once an admin paid or rejected it."""

    key = "payout-already-open"
    template = "a withdrawal request in {currency} is already waiting for an admin"


class PayoutAlreadyDecided(ShopError):
    """An admin's decision on a request another admin (or a second tap) decided first."""

    key = "payout-already-decided"
    template = "withdrawal request {payout_id} was already decided"


class PayoutUncovered(ShopError):
    """Approving a request a refund took commission back from since it was made (the distributor's
    available balance in its currency is below zero, ``owed`` under it): it would pay out commission the
    shop took back. Rejecting it nets the clawback."""

    key = "payout-uncovered"
    template = "withdrawal request {payout_id}: a refund took back {owed} {currency} of commission since"


class PayoutTextInvalid(InvalidInput):
    """Payout details, a payment reference or a rejection reason: empty once cleaned, or too long."""

    key = "payout-text-invalid"
    template = "type 1 to {max} characters"


# ---------------------------------------------------------------- distributors


class InvalidRates(InvalidInput):
    """Commission rates typed as percent per level (``COMMISSION_RATES``, a distributor's override) that
    ``core.rates.parse_rates`` refuses. Each subclass says what is wrong."""

    key = "error-rates-format"
    template = "must be one or two percentages separated by a comma, such as 10,5"


class RateNotAPercentage(InvalidRates):
    key = "error-rates-value"
    template = "{value!r}: a percentage from 0 to 100 with at most 2 decimals"


class RatesOverWhole(InvalidRates):
    key = "error-rates-total"
    template = "the levels add up to more than 100 %"


class DistributorNotFound(NotFound):
    """No user with this shop id (a distributor's card, a stale button)."""

    key = "admin-distributor-not-found"
    template = "no user {user_id}"


class OwnTermsRefused(ShopError):
    """Nobody sets their own commission rates or blocks their own commissions (an admin would raise their
    own rates to 100 %): another admin or an owner does."""

    key = "admin-distributor-own-terms"
    template = "user {user_id} is the one asking: nobody sets their own commission terms"


class OwnerTermsRefused(ShopError):
    """An owner's commission rates and block are set by an owner, never by staff."""

    key = "admin-distributor-owner-terms"
    template = "user {user_id} is an owner: only an owner sets an owner's commission terms"
