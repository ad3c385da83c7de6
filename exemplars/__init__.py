"""The default exemplar library, installed as ``rollmatch.exemplars`` (see README.md).

This file makes the folder a regular package, which a wheel and an editable install both find.
"""
