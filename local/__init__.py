"""Local stand-ins for the sources, the warehouse server and the national intake."""
