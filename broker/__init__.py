"""The broker service: API, settings, database, accounts, ledger, rentals and the CLI."""
