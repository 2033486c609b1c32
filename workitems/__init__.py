"""The billing team's work-item queue (work-items.md)."""
