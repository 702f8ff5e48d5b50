"""The `portside` command: thin; parses, calls the library or the daemon, renders."""
