"""Sending a settings form: the service call, and when a service refuses it, the same page
again with the reason in the reader's language, the status of the refusal and the form as
typed (nothing was changed: the transaction rolled back). Another company's id stays a
``NotFound``, which ``web.PageRoute`` turns into the 404 page, as the API answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import Response

from atende.dashboard.auth import Visitor
from atende.dashboard.web import explain
from atende.errors import AtendeError, NotFound

T = TypeVar("T")
Again = Callable[[int, str], Awaitable[Response]]  # the page again: (status, message)


class Refused(Exception):
    """A form's input a page refuses before calling a service, said in the reader's language."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


async def attempt(current: Visitor, work: Awaitable[T], again: Again) -> T | Response:
    """``work``'s result; when it is refused, ``again``'s page saying why."""
    try:
        return await work
    except Refused as exc:
        return await again(exc.status, exc.message)
    except NotFound:
        raise
    except AtendeError as exc:
        return await again(exc.status_code, explain(current, exc))
