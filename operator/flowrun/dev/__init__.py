"""`flowrun dev`: a real local Kubernetes control plane, for users without Docker and for tests."""
