"""HTTP endpoints outside GraphQL: the GraphQL view itself, file downloads, health."""
