"""Use cases, one module per capability: plain functions over the ports passed in."""
