def get_materials_outputs():
    """Final outputs of the materials module."""
    return []
