"""The data contract: click logs and candidate lists read from files, checked, and converted from MIND."""
