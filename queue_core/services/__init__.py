"""One use case each: load from the log, decide with the domain, append; collaborators passed in."""
