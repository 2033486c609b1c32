"""The billing team\x27s console."""
