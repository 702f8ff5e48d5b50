"""Offline vulnerability matching: OSV advisories imported into SQLite (`db`), compared with
each ecosystem's own version rules (`versions`, `match`), reported as a table, JSON or SARIF
(`report`); `index` keeps each image digest's packages for `portside where`."""
