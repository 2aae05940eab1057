"""Task functions and flows used by the manifests in `examples/`.

They ship inside the `flowrun` package so that every worker image with flowrun installed can
import them (`fn: "flowrun.examples.etl:extract"`), and so the examples run unchanged with
`flowrun run`, on the operator's Local Dask provider, and on Kubernetes.
"""
