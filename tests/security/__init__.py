"""The trust boundary, tried as a hostile job, a thief of files and a forger of exports would."""
