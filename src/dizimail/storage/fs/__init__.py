"""File-system BlobStore: tmp → fsync → rename; the directory is fsynced before the commit."""
