"""Tiny pure helpers with no I/O and no project imports."""
