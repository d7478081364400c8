"""Live and offline frames through a pipeline: the dynamic batcher, the stream runner, reloads."""
