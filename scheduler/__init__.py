"""APScheduler set-up and every periodic job (sweepers, payment-notice retries, payment ledger
reconciliation): thin wrappers around core services and channel ports. Imports no bot framework: a channel
hands in what its jobs need (see ``Reconciler``); the bot only builds and starts the scheduler."""
