"""The knowledge base: chunking, vector math (numpy) and Firestore vector storage."""
