"""Logic shared by every Cloud Function: config, models, Firestore access, HTTP, auth."""
