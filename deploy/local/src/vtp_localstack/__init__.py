"""The local stack: real infrastructure and every service, each as its own process, no Docker."""
