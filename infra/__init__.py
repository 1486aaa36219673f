"""Infrastructure: the table definition (one source of the key schema) and local tooling."""
