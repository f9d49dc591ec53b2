// Placeholder so the target builds; filled by its own issue.
