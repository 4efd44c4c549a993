"""Design: from finished cells to the next cells worth running (surrogate, proposals)."""
