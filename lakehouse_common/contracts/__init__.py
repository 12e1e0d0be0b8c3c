"""Each daemon's request/response models and typed async client: one definition per wire format."""
