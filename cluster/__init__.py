"""Kubernetes: CRD models, manifests from a plan, the operator, submit."""
