// Placeholder: written on its own branch (issue 17).
