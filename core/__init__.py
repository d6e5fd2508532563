"""The ground floor: what every layer above may use and nothing here imports from them
(random streams by role, atomic files and digests)."""
