"""Anti-spam layer 4: the content filter (tokens, the Bayes model, its store and training)."""
