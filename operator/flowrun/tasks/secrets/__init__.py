"""`flowrun.tasks.secrets`, as `prefect.tasks.secrets`: secrets read where the task runs.

Only the local kind ports: `EnvVarSecret` reads an environment variable. `PrefectSecret`
(Prefect Cloud's secret store) and `VaultSecret` are out of scope.
"""

from flowrun.tasks.secrets.env_var import EnvVarSecret, SecretBase

__all__ = ["EnvVarSecret", "SecretBase"]
