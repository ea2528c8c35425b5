"""Identity domain: plain Python, no frameworks."""
