"""actorhw."""
