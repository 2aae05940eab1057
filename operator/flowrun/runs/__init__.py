"""The run service both front ends share (the operator and `flowrun run`): no kopf, no kr8s.

Each decision about a run lives here once: the plan (`plan`), its execution (`execute`), how it
ends (`outcome`), how secret values are masked (`secrets`), how a result becomes strict JSON
within its caps (`results`), the one status renderer (`render`) and the batched status writer
(`statuswriter`, Kubernetes only through a sink protocol). The front ends only carry a run's
decisions to their medium (Kubernetes status and Events, or a terminal).
"""
