"""The transparency log end to end: real processes on loopback, a hostile upstream, readers and the browser page."""
