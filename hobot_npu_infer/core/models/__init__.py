"""Which model file a name means: the built-in models, their cache, and class labels."""
