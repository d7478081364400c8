"""Multi-object tracking of decoded detections, per input: IDs, and boxes between detector runs."""
