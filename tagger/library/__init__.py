"""Tagging a music library: which genres a song gets, and writing them into its file."""
