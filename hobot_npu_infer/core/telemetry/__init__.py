"""What the package reports about itself: rolling statistics, health levels, status names."""
