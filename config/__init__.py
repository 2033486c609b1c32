"""The bottom layer: settings from the environment, the billing month, and what may be shown of a secret."""
