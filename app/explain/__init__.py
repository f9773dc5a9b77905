"""What an activation encodes, shown: the information map over the diagram."""
