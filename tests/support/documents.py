"""The GraphQL documents the tests send most: one per mutation, and the dump of every object.

A mutation's document takes its input fields as variables of their own (`$videoId`, `$title`…)
and selects the changed objects with the fields the tests read, its user errors, and for a
deletion the counts of what went with it.
"""

from __future__ import annotations

import re

ERRORS = "userErrors { field message code }"
DELETED = "deleted { videos frames messages images }"
DELETION = f"deletedId {DELETED}"


def mutation(field: str, arguments: str, selection: str) -> str:
    """A document calling the mutation `field`, its input made of the variables `arguments`
    declares (`$name: Type, …`), selecting `selection` and the user errors."""
    names = re.findall(r"\$(\w+)", arguments)
    input_fields = ", ".join(f"{name}: ${name}" for name in names)
    operation = field[0].upper() + field[1:]
    return (
        f"mutation {operation}({arguments}) {{\n"
        f"  {field}(input: {{{input_fields}}}) {{\n    {selection}\n    {ERRORS}\n  }}\n}}\n"
    )


# --- accounts ---------------------------------------------------------------------------------


def _account(field: str) -> str:
    """A document calling `signUp` or `logIn`, which answer a token and the user."""
    operation = field[0].upper() + field[1:]
    return (
        f"mutation {operation}($input: {operation}Input!) {{\n"
        f"  {field}(input: $input) {{ token user {{ id email }} {ERRORS} }}\n}}\n"
    )


SIGN_UP = _account("signUp")
LOG_IN = _account("logIn")

LOG_OUT = "mutation LogOut { logOut { revoked userErrors { field message code } } }"
CHANGE_PASSWORD = """
mutation ChangePassword($input: ChangePasswordInput!) {
  changePassword(input: $input) {
    user { id email }
    userErrors { field message code }
  }
}
"""

# --- projects, videos, contexts, main chats ---------------------------------------------------

CREATE_PROJECT = mutation(
    "createProject", "$name: String!", "project { id name videoCount imageCount galleryCount }"
)
UPDATE_PROJECT = mutation("updateProject", "$id: ID!, $name: String!", "project { id name }")
DELETE_PROJECT = mutation("deleteProject", "$id: ID!", DELETION)

CREATE_VIDEO = mutation(
    "createVideo",
    "$projectId: ID!, $name: String!",
    """video {
      id name frameCount imageCount
      project { id }
      context { id content messageCount imageCount video { id } }
      mainChats { id name messageCount imageCount video { id } }
      frames { id }
    }""",
)
UPDATE_VIDEO = mutation("updateVideo", "$id: ID!, $name: String!", "video { id name }")
DELETE_VIDEO = mutation("deleteVideo", "$id: ID!", DELETION)

UPDATE_CONTEXT = mutation(
    "updateContext", "$id: ID!, $content: String!", "context { id content video { id } }"
)

CREATE_MAIN_CHAT = mutation(
    "createMainChat",
    "$videoId: ID!, $name: String!",
    "mainChat { id name messageCount video { id } }",
)
UPDATE_MAIN_CHAT = mutation("updateMainChat", "$id: ID!, $name: String!", "mainChat { id name }")
DELETE_MAIN_CHAT = mutation("deleteMainChat", "$id: ID!", DELETION)

# --- frames -----------------------------------------------------------------------------------

CREATE_FRAME = mutation(
    "createFrame",
    "$videoId: ID!, $title: String!, $order: Int",
    """frame {
      id title order messageCount imageCount selectedImage { id }
      video { id frameCount }
    }""",
)
UPDATE_FRAME = mutation("updateFrame", "$id: ID!, $title: String!", "frame { id title order }")
REORDER_FRAME = mutation(
    "reorderFrame",
    "$id: ID!, $newOrder: Int!",
    "frame { id title order } video { id frames { title order } }",
)
SELECT_FRAME_IMAGE = mutation(
    "selectFrameImage", "$frameId: ID!, $imageId: ID", "frame { id selectedImage { id url } }"
)
DELETE_FRAME = mutation(
    "deleteFrame", "$id: ID!", f"{DELETION} video {{ id frameCount frames {{ title order }} }}"
)

# --- chats' histories -------------------------------------------------------------------------

_CHAT = "id messageCount imageCount images { nodes { id } }"
CLEAR_FRAME_HISTORY = mutation(
    "clearFrameHistory", "$id: ID!", f"frame {{ {_CHAT} selectedImage {{ id }} }} {DELETED}"
)
CLEAR_CONTEXT_HISTORY = mutation(
    "clearContextHistory", "$id: ID!", f"context {{ {_CHAT} content }} {DELETED}"
)
CLEAR_MAIN_CHAT_HISTORY = mutation(
    "clearMainChatHistory", "$id: ID!", f"mainChat {{ {_CHAT} name }} {DELETED}"
)

# --- images and their places ------------------------------------------------------------------

IMAGE_PARTS = """
fragment ImageParts on Image {
  id url width height contentType byteSize
  project { id }
  message { id }
  appearsIn { __typename ... on Node { id } }
}
"""
_PLACE = "{ __typename ... on Node { id } }"
COPY_IMAGE = IMAGE_PARTS + mutation(
    "copyImage",
    "$imageId: ID!, $targetId: ID!",
    f"image {{ ...ImageParts }} source {{ __typename }} target {_PLACE}",
)
MOVE_IMAGE = IMAGE_PARTS + mutation(
    "moveImage",
    "$imageId: ID!, $sourceId: ID!, $targetId: ID!",
    f"image {{ ...ImageParts }} source {_PLACE} target {_PLACE}",
)
REMOVE_IMAGE = IMAGE_PARTS + mutation(
    "removeImage",
    "$imageId: ID!, $sourceId: ID!",
    f"image {{ ...ImageParts }} source {_PLACE} target {{ __typename }}",
)
DELETE_IMAGE = mutation("deleteImage", "$id: ID!", DELETION)

# --- reading ----------------------------------------------------------------------------------

NODE = "query Node($id: ID!) { node(id: $id) { __typename id } }"

FRAMES_OF_VIDEO = """
query Frames($id: ID!) {
  video(id: $id) { frames { id title order } }
}
"""

# Everything a refused mutation could have touched, to prove it touched nothing.
STATE = """
query State {
  projects(first: 100) {
    totalCount
    nodes {
      id name updatedAt videoCount imageCount galleryCount
      gallery(first: 100) { nodes { id } }
      images(first: 100) {
        nodes {
          id url project { id } message { id }
          appearsIn { __typename ... on Node { id } }
        }
      }
      videos(first: 100) {
        nodes {
          id name updatedAt frameCount imageCount
          context {
            id content updatedAt messageCount
            messages(first: 100) { nodes { id } }
            images(first: 100) { nodes { id } }
          }
          mainChats {
            id name updatedAt messageCount
            messages(first: 100) { nodes { id } }
            images(first: 100) { nodes { id } }
          }
          frames {
            id title order updatedAt messageCount selectedImage { id }
            messages(first: 100) { nodes { id } }
            images(first: 100) { nodes { id } }
          }
        }
      }
    }
  }
}
"""
