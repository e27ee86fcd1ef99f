"""A dynamic resource with its own type token, a secret input and computed outputs.

It writes a line to the file named by SMOKE_JOURNAL for every provider call, so the test can
tell that create, update, read and delete really ran in the provider process.
"""

from __future__ import annotations

import os
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, ReadResult, Resource, ResourceProvider, UpdateResult


def journal(event: str) -> None:
    with open(os.environ["SMOKE_JOURNAL"], "a", encoding="utf-8") as handle:
        handle.write(event + "\n")


class GreetingProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        journal("create")
        outs = {**props, "text": f"hello, {props['message']}", "reads": 0}
        return CreateResult(id_="greeting-1", outs=outs)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        journal("update")
        return UpdateResult(outs={**news, "text": f"hello, {news['message']}", "reads": 0})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        journal("read")
        return ReadResult(id_=id_, outs={**props, "reads": int(props.get("reads", 0)) + 1})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        journal("delete")


class Greeting(Resource, module="smoke", name="Greeting"):
    text: pulumi.Output[str]
    reads: pulumi.Output[int]

    def __init__(self, name: str, message: Any, token: Any) -> None:
        super().__init__(
            GreetingProvider(),
            name,
            {"message": message, "token": token, "text": None, "reads": None},
        )
