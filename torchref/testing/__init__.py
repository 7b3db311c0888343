"""torchref.testing: the harness for verifying hand-derived components, as a library.

``torchref.testing.strategies`` holds every hypothesis input maker the suite uses.
"""
