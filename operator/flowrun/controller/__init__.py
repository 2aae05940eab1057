"""The operator: a thin kopf layer that runs each FlowRun in a daemon.

`flowrun operator` (`flowrun.controller.cli`) builds the kopf registry (`app`); the life of one
FlowRun is `daemon.Run`. Nothing is imported here, so `import flowrun.controller` stays cheap.
"""
