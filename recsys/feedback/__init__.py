"""What users tell the rankers: the feedback store, its Hub mirror, interleaving and position bias."""
