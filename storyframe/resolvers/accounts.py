"""The viewer, and the account mutations: sign up, log in, log out, change password."""

from __future__ import annotations

import strawberry

from storyframe.domain.errors import Unauthenticated
from storyframe.resolvers.mutation import mutation
from storyframe.schema import accounts as api
from storyframe.schema.request_context import Info_


@strawberry.type
class AccountQuery:
    @strawberry.field(
        description="The user the request's token belongs to; null without a valid token."
    )
    async def viewer(self, info: Info_) -> api.User | None:
        viewer = info.context.viewer
        if viewer is None:  # not an error: a client asks this to learn whether it is logged in
            return None
        return api.User.of_viewer(viewer)


@strawberry.type
class AccountMutation:
    """Signing up and logging in need no viewer; the others refuse a request without one."""

    @mutation("Create an account and log in: returns a token.", fresh_loaders=False)
    async def sign_up(self, info: Info_, input: api.SignUpInput) -> api.AuthPayload:
        accounts, client = info.context.app.accounts, info.context.client_address
        session = await accounts.sign_up(input.email, input.password, client)
        return api.AuthPayload(token=session.token, user=api.User.from_row(session.user))

    @mutation("Log in with e-mail and password: returns a new token.", fresh_loaders=False)
    async def log_in(self, info: Info_, input: api.LogInInput) -> api.AuthPayload:
        accounts, client = info.context.app.accounts, info.context.client_address
        session = await accounts.log_in(input.email, input.password, client)
        return api.AuthPayload(token=session.token, user=api.User.from_row(session.user))

    @mutation("Revoke the token this request was made with.", fresh_loaders=False)
    async def log_out(self, info: Info_) -> api.LogOutPayload:
        viewer = info.context.viewer
        if viewer is None:
            raise Unauthenticated
        await info.context.app.accounts.log_out(viewer)
        return api.LogOutPayload(revoked=True)

    @mutation("Change the password; every other token is revoked.", fresh_loaders=False)
    async def change_password(
        self, info: Info_, input: api.ChangePasswordInput
    ) -> api.ChangePasswordPayload:
        viewer = info.context.viewer
        if viewer is None:
            raise Unauthenticated
        accounts = info.context.app.accounts
        user = await accounts.change_password(viewer, input.current_password, input.new_password)
        return api.ChangePasswordPayload(user=api.User.from_row(user))
