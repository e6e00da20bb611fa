"""Everything that reaches the terminal goes through here."""
