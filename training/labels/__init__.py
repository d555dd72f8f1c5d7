"""Label issues: out-of-fold probabilities ranked by cleanlab, for the next run to leave out."""
