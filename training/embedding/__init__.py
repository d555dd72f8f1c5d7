"""Features: the frozen base, its runtimes and precision, and the embedding store every later step reads."""
