"""What runs inside an exporter child (stdlib, numpy, torch, Ultralytics and a format runtime only)."""
