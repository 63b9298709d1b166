"""Transport-neutral services and contracts. Imports no web, SQL, MLflow, torch or Ray code."""
