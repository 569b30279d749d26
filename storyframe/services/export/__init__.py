"""Exports of a video: the MP4, the PDF storyboard and the ZIP archive of its frames."""
