"""The billing team's work-item queue (docs/contract/work-items.md)."""
