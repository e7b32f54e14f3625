"""What a search is: grid modules, search files, config templates, values and distributions."""
