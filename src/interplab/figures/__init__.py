"""One function per figure; each takes tidy tables and an output path, and shares `style`."""
