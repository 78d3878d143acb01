def get_images_outputs():
    """Final outputs of the images module."""
    return []
