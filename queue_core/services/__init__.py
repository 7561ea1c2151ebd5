"""One use case each: load state from the log, decide with the domain, append; collaborators are passed in, never the Client."""
