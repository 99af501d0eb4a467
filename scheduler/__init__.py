"""APScheduler set-up and the sweeper jobs: thin wrappers around core services."""
