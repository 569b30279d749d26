"""The provider used without an OpenAI key: placeholder images drawn offline with Pillow.

Each image says plainly that it is a placeholder and shows what it stands for: the prompt, the
caption (a frame's title), its position in the generation and thumbnails of the reference images
that were sent. Its background comes from a hash of the prompt, the position and a random nonce,
and its hue steps round the colour wheel by the golden ratio from one image to the next, so no two
images look alike, not even two of the same prompt made one after the other. The PNG's metadata
marks it too: `Software` is "Storyframe placeholder", `Description` the prompt and `Title` the
caption.

A call for one image with partial images wanted and a sink for them (`ImageCall.previews`)
hands the sink that many previews before it returns, as a model streaming its image would:
small blurred JPEGs of the same picture (at most 256 pixels wide or high), coarsest first.

`describe` cannot look at images without a vision model; it says so, and reports what can be
known offline: each image's size, format and dominant colours. `complete` answers any prompt
with the same canned line, saying that no text model is configured.
"""

from storyframe.providers.placeholder.describing import colour_name
from storyframe.providers.placeholder.drawing import SOFTWARE
from storyframe.providers.placeholder.provider import PlaceholderProvider, parse_size

__all__ = ["SOFTWARE", "PlaceholderProvider", "colour_name", "parse_size"]
