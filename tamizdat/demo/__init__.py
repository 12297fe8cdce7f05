"""Sample articles for `tamizdat demo` (written for the demo; fictional events)."""
