"""The tabs GraphiQL opens with, the first time a browser opens it: the product's main flow, one
step a tab. GraphiQL names a tab after its document's first operation, and after the operation
last run in it once one is.

Values go in variables, never in the documents: GraphiQL copies the document of the tab being
edited into the address bar (to share it), and a password there would end up in the browser's
history. The variables stay in the browser."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Tab:
    """One tab: its title (the name of its document's first operation, as GraphiQL shows it),
    its document, and its variables and headers."""

    title: str
    query: str
    variables: dict[str, object]
    headers: dict[str, str] | None = None

    def as_graphiql(self) -> dict[str, str | None]:
        """The tab as GraphiQL's `defaultTabs` takes it."""
        return {
            "query": self.query,
            "variables": json.dumps(self.variables, indent=2),
            "headers": json.dumps(self.headers, indent=2) if self.headers else None,
        }


TOKEN_HEADERS = {"Authorization": "Bearer <the token SignUp or LogIn answered>"}

SIGN_UP = Tab(
    "SignUp",
    """# Sign up (or log in again) to get a token. Then, in each other tab, put it in Headers:
# {"Authorization": "Bearer sf_…"}. The run button asks which of the two to run.
mutation SignUp($email: String!, $password: String!) {
  signUp(input: {email: $email, password: $password}) {
    token
    user { id email }
    userErrors { field message code }
  }
}

mutation LogIn($email: String!, $password: String!) {
  logIn(input: {email: $email, password: $password}) {
    token
    user { id email }
    userErrors { field message code }
  }
}
""",
    {"email": "ada@example.com", "password": "a long, unusual phrase"},
)

CREATE_PROJECT = Tab(
    "CreateProject",
    """# A project holds videos; a video is an ordered list of frames. Run these in order,
# putting each new id in the variables of the next one.
mutation CreateProject($projectName: String!) {
  createProject(input: {name: $projectName}) {
    project { id name }
    userErrors { field message code }
  }
}

mutation CreateVideo($projectId: ID!, $videoName: String!) {
  createVideo(input: {projectId: $projectId, name: $videoName}) {
    video { id name context { id } mainChats { id } }
    userErrors { field message code }
  }
}

mutation CreateFrame($videoId: ID!, $frameTitle: String!) {
  createFrame(input: {videoId: $videoId, title: $frameTitle}) {
    frame { id title order }
    userErrors { field message code }
  }
}
""",
    {
        "projectName": "Trailer",
        "projectId": "<the id CreateProject answered>",
        "videoName": "Teaser",
        "videoId": "<the id CreateVideo answered>",
        "frameTitle": "Opening shot",
    },
    TOKEN_HEADERS,
)

GENERATE = Tab(
    "GenerateFrameImages",
    """# Ask for a frame's images. The answer comes at once, with the generation QUEUED:
# FollowGeneration shows it happen, and the frame keeps the images it made.
mutation GenerateFrameImages($frameId: ID!, $prompt: String!, $imageCount: Int!) {
  generateFrameImages(input: {frameId: $frameId, prompt: $prompt, imageCount: $imageCount}) {
    message { id prompt }
    generation { id status position }
    userErrors { field message code }
  }
}

query Frame($frameId: ID!) {
  node(id: $frameId) {
    ... on Frame {
      title
      selectedImage { url }
      messages(first: 5) { nodes { prompt images { id url } } }
    }
  }
}
""",
    {
        "frameId": "<the id CreateFrame answered>",
        "prompt": "a lighthouse keeper climbs the stairs at dusk",
        "imageCount": 2,
    },
    TOKEN_HEADERS,
)

FOLLOW_GENERATION = Tab(
    "FollowGeneration",
    """# Every change of a generation, over WebSocket (graphql-transport-ws) at /graphql: its
# state first, then each preview and image, until FINISHED. Headers carry the token here too.
subscription FollowGeneration($generationId: ID!) {
  generationUpdated(id: $generationId) {
    kind
    index
    preview { index sequence width height }
    image { id url }
    generation { id status completedCount requestedCount errors { index code message } }
  }
}
""",
    {"generationId": "<the generation id GenerateFrameImages answered>"},
    TOKEN_HEADERS,
)

DEFAULT_TABS = (SIGN_UP, CREATE_PROJECT, GENERATE, FOLLOW_GENERATION)
