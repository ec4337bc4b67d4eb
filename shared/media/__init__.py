"""Generated images and videos: objects in Cloud Storage, records in `media`."""
