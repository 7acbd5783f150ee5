"""`songqueue doctor`: every check an operator needs, one line each with a fix."""
