"""The knowledge base: documents, parsing, chunking, indexing and retrieval."""
