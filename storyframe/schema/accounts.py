"""Accounts in the API: the viewer, and the payloads of signing up and logging in."""

from __future__ import annotations

from datetime import datetime

import strawberry

from storyframe.db import tables
from storyframe.domain.ports import Viewer
from storyframe.schema.nodes import Node
from storyframe.schema.payloads import Payload


@strawberry.type(description="A person with an account; owns projects.")
class User(Node):
    email: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: tables.User) -> User:
        assert row.id is not None
        return cls(pk=row.id, email=row.email, created_at=row.created_at)

    @classmethod
    def of_viewer(cls, viewer: Viewer) -> User:
        """The viewer, as read with their token."""
        return cls(
            pk=viewer.user_id,
            email=viewer.email,
            created_at=viewer.created_at,
        )


@strawberry.input
class SignUpInput:
    email: str
    password: str = strawberry.field(description="10 to 128 characters, not easy to guess.")


@strawberry.input
class LogInInput:
    email: str
    password: str


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str


@strawberry.type
class AuthPayload(Payload):
    token: str | None = strawberry.field(
        default=None,
        description="Send it as `Authorization: Bearer <token>`. Shown once; it expires.",
    )
    user: User | None = None


@strawberry.type
class LogOutPayload(Payload):
    revoked: bool = strawberry.field(default=False, description="Whether the token was revoked.")


@strawberry.type
class ChangePasswordPayload(Payload):
    user: User | None = None
