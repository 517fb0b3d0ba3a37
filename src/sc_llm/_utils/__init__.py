"""Private helpers shared by the AnnData-facing functions (validation, matrix access, logging)."""
