"""Images in and out of the core: files, sample photos, camera sequences, NV12, drawing."""
