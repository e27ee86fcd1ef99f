"""A tiny Pulumi program with one dynamic resource: the smoke test's subject."""

import pulumi
from smoke_resource import Greeting

config = pulumi.Config()
greeting = Greeting(
    "hello",
    message=config.require("message"),
    token=config.require_secret("token"),
)
pulumi.export("text", greeting.text)
pulumi.export("reads", greeting.reads)
