"""The `anytouch` command: one module per verb; each parses its arguments and calls a library function."""
