"""Serving code shipped inside model.tar.gz (self-contained: no ``mlops`` imports)."""
