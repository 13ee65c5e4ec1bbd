"""Lightning pieces: the SRModule, callbacks, schedules and image logging."""
