"""Views of the scored tables for people: the scorecard view model, the terminal tables and the HTML report."""
