"""Jobs domain: the job state machine, driven only by events. Plain Python."""
