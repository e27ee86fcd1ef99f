"""circlecost: a self-hosted, declarative CircleCI cost integration.

Nothing happens at import time: the Pulumi dynamic providers are pickled into state and
re-imported in other processes, so this package only defines names.
"""
