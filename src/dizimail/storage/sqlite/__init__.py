"""Embedded MetaStore and QueueStore on one SQLite file (WAL, synchronous=FULL).

All writes go through one writer thread that groups whatever transactions are
waiting into one SQLite transaction, each in its own SAVEPOINT, so one fsync
serves many messages (group commit) and one failing job never spoils another.
Reads run on pooled connections in a small thread pool; WAL lets them proceed
while the writer commits.
"""
