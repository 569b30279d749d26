"""The viewer, and the account mutations: sign up, log in, log out, change password."""

from __future__ import annotations

import strawberry

from storyframe.domain.errors import Unauthenticated
from storyframe.resolvers.mutation import attempt
from storyframe.schema import accounts as api
from storyframe.schema.types import Info_


@strawberry.type
class AccountQuery:
    @strawberry.field(
        description="The user the request's token belongs to; null without a valid token."
    )
    async def viewer(self, info: Info_) -> api.User | None:
        viewer = info.context.viewer
        if viewer is None:  # not an error: a client asks this to learn whether it is logged in
            return None
        return api.User.from_row(await info.context.app.accounts.user(viewer))


@strawberry.type
class AccountMutation:
    @strawberry.mutation(description="Create an account and log in: returns a token.")
    async def sign_up(self, info: Info_, input: api.SignUpInput) -> api.AuthPayload:
        async def act() -> api.AuthPayload:
            session = await info.context.app.accounts.sign_up(
                input.email, input.password, info.context.client_address
            )
            return api.AuthPayload(token=session.token, user=api.User.from_row(session.user))

        return await attempt(api.AuthPayload, act)

    @strawberry.mutation(description="Log in with e-mail and password: returns a new token.")
    async def log_in(self, info: Info_, input: api.LogInInput) -> api.AuthPayload:
        async def act() -> api.AuthPayload:
            session = await info.context.app.accounts.log_in(
                input.email, input.password, info.context.client_address
            )
            return api.AuthPayload(token=session.token, user=api.User.from_row(session.user))

        return await attempt(api.AuthPayload, act)

    @strawberry.mutation(description="Revoke the token this request was made with.")
    async def log_out(self, info: Info_) -> api.LogOutPayload:
        viewer = info.context.viewer
        if viewer is None:
            raise Unauthenticated
        await info.context.app.accounts.log_out(viewer)
        return api.LogOutPayload(revoked=True)

    @strawberry.mutation(description="Change the password; every other token is revoked.")
    async def change_password(
        self, info: Info_, input: api.ChangePasswordInput
    ) -> api.ChangePasswordPayload:
        viewer = info.context.viewer
        if viewer is None:
            raise Unauthenticated

        async def act() -> api.ChangePasswordPayload:
            user = await info.context.app.accounts.change_password(
                viewer, input.current_password, input.new_password
            )
            return api.ChangePasswordPayload(user=api.User.from_row(user))

        return await attempt(api.ChangePasswordPayload, act)
