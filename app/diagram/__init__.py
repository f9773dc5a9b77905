"""The model diagram, which is also the site picker: the view (`view`), its drawn items
(`items`) and where they go (`layout`, from the engine's site catalogue)."""
