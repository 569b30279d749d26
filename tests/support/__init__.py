"""What Storyframe's tests share: one way to build an app, a client, fakes, seeds and scenes."""
