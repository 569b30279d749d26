"""Image generation: a prompt in a chat becomes a message, a generation record and 1 to 4 images.

The request and the work are separate steps. `submit` checks the input, saves the user's message
with a QUEUED generation and hands it to the job queue; `run` does the work for a generation id
alone (describing the reference images, calling the provider, storing and recording each image
as it comes) and records how it ended, whichever process runs it.

`types` holds what is asked and answered, `service` the steps, `requests` the checking and
saving of a request (and its idempotency key), `pipeline` the making of the images, `recorder`
the recording of each call's images as they come, `outcome` what a generation did and how it is
recorded, `generator` what a process shares, `sweep` the failing of running generations no
process has been heard of for too long, `vision` the questions asked about images and the
provider's status.
"""

from storyframe.services.generation.generator import Generator
from storyframe.services.generation.service import GenerationService
from storyframe.services.generation.sweep import Sweep
from storyframe.services.generation.types import (
    MAX_IMAGES,
    Analysis,
    Generated,
    GenerationRequest,
    GenerationStatus,
    ImageDefaults,
    ImageFailure,
    ModelState,
    ProviderStatus,
)

__all__ = [
    "MAX_IMAGES",
    "Analysis",
    "Generated",
    "GenerationRequest",
    "GenerationService",
    "GenerationStatus",
    "Generator",
    "ImageDefaults",
    "ImageFailure",
    "ModelState",
    "ProviderStatus",
    "Sweep",
]
