def get_events_outputs():
    """Final outputs of the events module."""
    return []
